"""Write the registered JSON Schema documents to ``schemas/json/`` (or check them for drift).

    python -m schemas.generate            # write schemas/json/*.schema.json, remove stale ones
    python -m schemas.generate --check    # exit 1 and list the files that differ

Output is deterministic: sorted keys, two-space indent, UTF-8, a trailing newline.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from schemas.registry import DOCUMENTS, SchemaDocument

JSON_DIR = Path(__file__).resolve().parent / "json"
"""Where the checked-in documents live."""

SUFFIX = ".schema.json"
FIX_COMMAND = "python -m schemas.generate  (or: tandem schemas generate / make schemas)"

DriftKind = Literal["changed", "missing", "stale"]


@dataclass(frozen=True)
class Drift:
    """A file that does not match the registry."""

    filename: str
    kind: DriftKind
    """``changed``: differs; ``missing``: not written yet; ``stale``: no longer registered."""

    def __str__(self) -> str:
        return f"{self.kind}: {self.filename}"


def render(document: SchemaDocument) -> str:
    """The exact text of a document's file."""
    return json.dumps(document.json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_all(documents: Sequence[SchemaDocument] | None = None) -> dict[str, str]:
    """File name -> file text for every registered document."""
    return {d.filename: render(d) for d in (DOCUMENTS if documents is None else documents)}


def check(directory: Path = JSON_DIR) -> list[Drift]:
    """The files in `directory` that differ from the registry (empty: no drift)."""
    wanted = render_all()
    drift: list[Drift] = []
    for filename, text in sorted(wanted.items()):
        path = directory / filename
        if not path.exists():
            drift.append(Drift(filename, "missing"))
        elif path.read_text(encoding="utf-8") != text:
            drift.append(Drift(filename, "changed"))
    if directory.is_dir():
        for path in sorted(directory.glob(f"*{SUFFIX}")):
            if path.name not in wanted:
                drift.append(Drift(path.name, "stale"))
    return drift


def generate(directory: Path = JSON_DIR) -> list[Drift]:
    """Write every document, remove stale ``*.schema.json`` files; returns what changed."""
    changes = check(directory)
    directory.mkdir(parents=True, exist_ok=True)
    wanted = render_all()
    for change in changes:
        path = directory / change.filename
        if change.kind == "stale":
            path.unlink()
        else:
            path.write_text(wanted[change.filename], encoding="utf-8", newline="\n")
    return changes


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (``python -m schemas.generate``)."""
    parser = argparse.ArgumentParser(
        prog="python -m schemas.generate",
        description="Write Tandem's JSON Schema documents, or check them for drift.",
    )
    parser.add_argument("--check", action="store_true", help="only check; exit 1 on drift")
    parser.add_argument(
        "--out", type=Path, default=JSON_DIR, help=f"target directory (default: {JSON_DIR})"
    )
    args = parser.parse_args(argv)
    directory: Path = args.out
    if args.check:
        drift = check(directory)
        for item in drift:
            print(item, file=sys.stderr)
        if drift:
            print(f"{len(drift)} schema file(s) out of date; run: {FIX_COMMAND}", file=sys.stderr)
            return 1
        print(f"{len(DOCUMENTS)} schema documents up to date in {directory}")
        return 0
    changes = generate(directory)
    for item in changes:
        print(item)
    print(f"{len(DOCUMENTS)} schema documents in {directory} ({len(changes)} changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
