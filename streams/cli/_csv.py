"""CSV output for the commands that list things (`kpis --csv`, `journeys --csv`).

One header row, then one row per item; columns in a fixed order (the model's field order), so a
spreadsheet or a script can rely on them. Written with the standard `csv` module: RFC 4180
quoting, ``\\r\\n`` line ends. Empty cell: no value (null).
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path

from streams.cli._common import EXIT_USAGE, fail

LIST_SEPARATOR = ";"
"""Joins a list in one cell (identities, for instance)."""


def cell(value: object) -> str:
    """A value as CSV text: empty for none, lists joined by `LIST_SEPARATOR`, numbers as is."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(cell(v) for v in value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def render(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    """The CSV text: the header row, then each row's cells in `columns` order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(column)) for column in columns])
    return buffer.getvalue()


def emit(text: str, out: Path | None) -> None:
    """Print CSV text on stdout, or write it to `out` (a one-line error, exit 2, if it cannot)."""
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        out.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}", EXIT_USAGE)
