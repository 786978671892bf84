"""`tandem schemas generate|check|list|show`: the JSON Schema documents in ``schemas/json/``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from streams.cli import app
from streams.cli._common import console, err_console, fail

schemas_app = typer.Typer(
    help="Tandem's JSON Schema documents (Draft 2020-12), generated from the pydantic models: "
    "the language-neutral contract for publishing tools. See docs/contract.md.",
    no_args_is_help=True,
)
app.add_typer(schemas_app, name="schemas")


def _default_dir() -> Path:
    from schemas.generate import JSON_DIR

    return JSON_DIR


DIR_HELP = "directory of the *.schema.json files (default: the package's schemas/json)"


@schemas_app.command("generate")
def generate(
    out: Path | None = typer.Option(None, "--out", "-o", help=DIR_HELP),
) -> None:
    """Write every registered schema document and remove stale ones (commit the result)."""
    from schemas.generate import generate as write_all
    from schemas.registry import DOCUMENTS

    directory = out or _default_dir()
    changes = write_all(directory)
    for change in changes:
        marker = {"stale": "[red]-[/]", "missing": "[green]+[/]", "changed": "[yellow]~[/]"}
        console.print(f"  {marker[change.kind]} {change.filename} ({change.kind})")
    console.print(f"{len(DOCUMENTS)} schema documents in {directory}: {len(changes)} changed")


@schemas_app.command("check")
def check(
    directory: Path | None = typer.Option(None, "--dir", "-d", help=DIR_HELP),
) -> None:
    """Exit 1 (listing the files) if the checked-in documents differ from the models."""
    from schemas.generate import FIX_COMMAND
    from schemas.generate import check as find_drift
    from schemas.registry import DOCUMENTS

    target = directory or _default_dir()
    drift = find_drift(target)
    if drift:
        for item in drift:
            err_console.print(f"  {item.kind}: {item.filename}", highlight=False)
        fail(f"{len(drift)} schema file(s) in {target} out of date; run: {FIX_COMMAND}")
    console.print(f"{len(DOCUMENTS)} schema documents up to date in {target}")


@schemas_app.command("list")
def list_documents(
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """List the registered schema documents."""
    from schemas.registry import DOCUMENTS

    if as_json:
        rows = [
            {"name": d.name, "file": d.filename, "id": d.id, "title": d.title} for d in DOCUMENTS
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Tandem schema documents (schemas/json/<name>.schema.json)")
    table.add_column("name", no_wrap=True)
    table.add_column("what it is")
    for d in DOCUMENTS:
        table.add_row(d.name, d.description.split(". ")[0].rstrip("."))
    console.print(table)


@schemas_app.command("show")
def show(
    name: str = typer.Argument(
        ..., help="a document name, e.g. touchpoint.sales.deal_won or dead_letter"
    ),
) -> None:
    """Print one schema document (as generated from the models)."""
    from schemas.generate import render
    from schemas.registry import get

    try:
        document = get(name)
    except KeyError as exc:
        fail(str(exc.args[0]))
    typer.echo(render(document), nl=False)
