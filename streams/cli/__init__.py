"""The `tandem` command line: one Typer app, one module per command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="tandem",
    help="Tandem: one customer journey for marketing and sales, built from Kafka touchpoints.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
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
