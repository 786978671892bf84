"""Loading a playbook from YAML text, with one clear line per problem.

Reading files is the adapters' business; `load_playbook_file` is a convenience for them and
for tests, and `default_playbook` reads the copy bundled with the package.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from schemas.playbook import Playbook


class PlaybookError(ValueError):
    """The playbook is not valid; `problems` holds one human-readable line per problem."""

    def __init__(self, problems: list[str], source: str = "playbook") -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"{source} is not valid ({len(problems)} problem(s)):\n{lines}")


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(document)"


def _problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see streams/defaults/playbook.yaml)"
        elif item["type"] == "missing":
            message = "required key is missing"
        for line in message.splitlines():
            # Document-level checks name their own paths.
            problems.append(f"{_where(item['loc'])}: {line}" if item["loc"] else line)
    return problems


def load_playbook(text: str, source: str = "playbook") -> Playbook:
    """Parse and validate a playbook from YAML text; raise `PlaybookError` if it is not valid."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PlaybookError([f"{where}not valid YAML: {problem}"], source) from exc
    if not isinstance(document, dict):
        raise PlaybookError(["the document must be a mapping (key: value) at the top"], source)
    try:
        return Playbook.model_validate(document)
    except ValidationError as exc:
        raise PlaybookError(_problems(exc), source) from exc


def load_playbook_file(path: str | Path) -> Playbook:
    """Read and validate the playbook at `path` (an adapter-side convenience)."""
    path = Path(path)
    return load_playbook(path.read_text(encoding="utf-8"), source=str(path))


def default_playbook_text() -> str:
    """The YAML of the playbook bundled with Tandem."""
    return (resources.files("streams") / "defaults" / "playbook.yaml").read_text("utf-8")


@lru_cache(maxsize=1)
def default_playbook() -> Playbook:
    """The bundled B2B SaaS playbook (`streams/defaults/playbook.yaml`)."""
    return load_playbook(default_playbook_text(), source="streams/defaults/playbook.yaml")
