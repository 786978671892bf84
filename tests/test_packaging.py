"""The code under test is this repository's, and the distribution ships what it needs.

There are unrelated PyPI projects called ``events`` and ``schemas``; if one were installed and
shadowed ours, every other test would test the wrong code.
"""

from __future__ import annotations

import fnmatch
import importlib
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "name",
    [
        "events",
        "events.envelope",
        "events.vocabulary",
        "events.decode",
        "events.publisher",
        "schemas",
        "schemas.registry",
        "schemas.deadletter",
        "streams",
        "streams.api",
    ],
)
def test_packages_are_imported_from_this_repository(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    path = Path(module.__file__).resolve()
    assert path.is_relative_to(REPO), f"{name} imported from {path}, not from {REPO}"
    assert ".venv" not in path.relative_to(REPO).parts


def test_the_contract_packages_are_found_by_the_build() -> None:
    from setuptools import find_packages

    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    found = set(find_packages(where=str(REPO), include=include))
    assert {"events", "schemas", "streams", "streams.api", "streams.cli"} <= found
    assert not any(name.startswith("tests") for name in found)


def test_the_json_schemas_are_package_data() -> None:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["schemas"]
    files = sorted((REPO / "schemas" / "json").glob("*.schema.json"))
    assert files, "schemas/json is empty: run `python -m schemas.generate`"
    for path in files:
        relative = path.relative_to(REPO / "schemas").as_posix()
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


def test_the_tandem_console_script_has_the_contract_commands() -> None:
    assert PYPROJECT["project"]["scripts"]["tandem"] == "streams.cli:main"
    from typer.main import get_command

    from streams.cli import _register, app

    _register()
    group = get_command(app)
    commands = set(group.commands)  # type: ignore[attr-defined]
    assert {"publish", "deadletter", "schemas"} <= commands


def test_the_contract_needs_only_declared_dependencies() -> None:
    declared = {d.split("=")[0].split("[")[0].lower() for d in PYPROJECT["project"]["dependencies"]}
    assert {"pydantic", "aiokafka"} <= declared
