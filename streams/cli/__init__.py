"""The `tandem` command line: one Typer app, one module per command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tandem",
    help="Tandem: one customer journey for marketing and sales, built from Kafka touchpoints.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    epilog="Exit codes: 0 done, 1 the command found a problem (rejected lines, nothing found), "
    "2 a bad option, argument or input file, 69 Kafka or Redis unreachable, 130 interrupted. "
    "Times: 2025-06-01, 2025-06-01T12:00, with or without an offset (UTC by default). "
    "See docs/cli.md.",
)


def package_version() -> str:
    """The installed package's version (its metadata), or a note when running from a tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tandem-journeys")
    except PackageNotFoundError:
        return "unknown (not installed: `pip install -e .`)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tandem {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_print_version,
        is_eager=True,
        help="print the version and exit",
    ),
) -> None:
    """Tandem: one customer journey for marketing and sales, built from Kafka touchpoints."""


def _register() -> None:
    # Each command group lives in its own module and registers itself on `app`.
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


def main() -> None:
    """Entry point of the `tandem` console script."""
    import importlib
    import sys
    from pathlib import Path

    # Each command lives in the module of the same name: import only that one (start-up time
    # matters for `tandem kpis` and scripts); `--help` and unknown names import them all.
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name.isidentifier() and (Path(__file__).parent / f"{name}.py").exists():
        importlib.import_module(f"{__name__}.{name}")
    else:
        _register()
    app()
