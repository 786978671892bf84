"""The API's access log without people or secrets in it.

Uvicorn's access log prints each request's path and query: ``DELETE /v1/people/ada@…`` would
put an email in the log, and a ``?key=…`` a secret. While an app runs, `RedactedAccessLog`
rewrites every access-log record: a path that a route with parameters matches is logged as
that route's template (``/v1/people/{reference}``), a path below such a route that matches
none (``/v1/people/ada@x/y``, a 404) as the route's fixed part and ``…``, and every query value
is replaced by ``…`` (the parameter names stay, so the log still says what was asked). The
templates are the app's OpenAPI paths. The API's own log
lines never name a reference or a key (see `streams.api.people`, `streams.api.auth`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.routing import compile_path

ACCESS_LOGGER = "uvicorn.access"
REDACTED = "…"
_PATH_ARG = 2
"""Where uvicorn's access record keeps the path: (client, method, path, http version, status)."""


Template = tuple[re.Pattern[str], str]


def templates_of(paths: Sequence[str]) -> list[Template]:
    """(regex, template) of every path template that has parameters (``/v1/people/{reference}``)."""
    return [(compile_path(path)[0], path) for path in paths if "{" in path]


def _without_people(path: str, templates: Sequence[Template]) -> str:
    for regex, template in templates:
        if regex.match(path):
            return template
    for _regex, template in templates:
        fixed = template.partition("{")[0]
        if path.startswith(fixed):
            return f"{fixed}{REDACTED}"
    return path


def redact_path(full_path: str, templates: Sequence[Template]) -> str:
    """`full_path` (path and query) as the access log may show it."""
    path, _, query = full_path.partition("?")
    path = _without_people(path, templates)
    if not query:
        return path
    names = [name for name, _value in parse_qsl(query, keep_blank_values=True)]
    return f"{path}?{'&'.join(f'{name}={REDACTED}' for name in names)}"


class RedactedAccessLog(logging.Filter):
    """Rewrites uvicorn's access-log records (see the module docstring)."""

    def __init__(self, paths: Sequence[str]) -> None:
        super().__init__()
        self.templates = templates_of(paths)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > _PATH_ARG:
            path = args[_PATH_ARG]
            if isinstance(path, str):
                path = redact_path(path, self.templates)
                record.args = (*args[:_PATH_ARG], path, *args[_PATH_ARG + 1 :])
        return True


@asynccontextmanager
async def redacted_access_log(app: FastAPI) -> AsyncIterator[None]:
    """A lifespan: the access log is redacted while `app` runs (uvicorn configures its logging
    before the lifespan starts, so the filter is added after it)."""
    redaction = RedactedAccessLog(list(app.openapi().get("paths", {})))
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.addFilter(redaction)
    try:
        yield
    finally:
        logger.removeFilter(redaction)
