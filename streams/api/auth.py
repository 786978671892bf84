"""API keys: hashed at rest, each with scopes.

A key is a random secret (``tdm_`` and 43 URL-safe characters: 256 bits) that Tandem never
stores: configuration holds its SHA-256 digest (``sha256:<64 hex>``) and what the key may do.

Scopes:

- ``publish`` — ``POST /v1/events`` (and ``/v1/segment/…``, which also takes the key as the
  HTTP Basic user name, see `streams.api.segment`) for the entry's ``domains``, on behalf of its
  ``tool``;
- ``read`` — person-level reads: ``GET /v1/journeys`` and ``GET /v1/journeys/{reference}``
  (and the KPIs unless they are public, ``TANDEM_PUBLIC_KPIS``);
- ``admin`` — operations on people (e.g. forgetting one).

Scopes are independent: a key has exactly the ones it was given.

Configuration (JSON ``{"sha256:…": {"name": …, "scopes": […], "tool": …, "domains": […]}}``):

- ``TANDEM_API_KEYS_FILE`` (default ``<data_dir>/api-keys.json``), written by
  ``tandem keys create``;
- ``TANDEM_API_KEYS``: the same JSON in a variable.

Both may be set (merged; a digest defined twice is an error). An entry without ``scopes`` that
names a ``tool`` and ``domains`` is a publish key (the format before scopes existed). A plain
key in configuration is refused: ``tandem keys hash`` prints the digest of an existing one. A
running API sees the keys file change within a second (`KeyStore`): keys created or revoked
need no restart.

Why an unsalted SHA-256: a salt protects guessable secrets (passwords) against precomputed
tables; a 256-bit random key cannot be guessed from its digest, and an unsalted digest lets a
request's key be found with one lookup.

Clients present their key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Keys and
digests are never logged: messages name an entry by its ``name`` or ``tool``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from events.envelope import Domain

ENV_KEYS = "TANDEM_API_KEYS"
ENV_KEYS_FILE = "TANDEM_API_KEYS_FILE"
DEFAULT_KEYS_FILE = "api-keys.json"
"""The keys file inside ``Settings.data_dir`` when ``TANDEM_API_KEYS_FILE`` is not set."""

Scope = Literal["publish", "read", "admin"]
SCOPES: tuple[Scope, ...] = ("publish", "read", "admin")

log = logging.getLogger("tandem.api")

KEY_PREFIX = "tdm_"
DIGEST_PREFIX = "sha256:"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def new_key() -> str:
    """A fresh API key: 256 random bits, URL-safe, recognisable by its ``tdm_`` prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_digest(key: str) -> str:
    """What Tandem stores of a key: ``sha256:<hex>`` of its UTF-8 bytes."""
    return DIGEST_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_digest(text: str) -> bool:
    """Whether `text` is a key digest (not a key)."""
    return bool(_DIGEST.match(text))


class ApiClient(BaseModel):
    """Who holds an API key and what it may do (the key itself is not here)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, max_length=128, description="who holds it, e.g. dashboard")
    tool: str | None = Field(
        None, min_length=1, max_length=128, description="publishing tool, e.g. hubspot"
    )
    domains: frozenset[Domain] = Field(
        frozenset(), description="which touchpoint domains a publish key may publish"
    )
    scopes: frozenset[Scope] = Field(frozenset(), description="publish, read and/or admin")
    created_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _publish_by_default(cls, data: Any) -> Any:
        # Entries from before scopes existed: a tool with domains is a publish key.
        if isinstance(data, dict) and "scopes" not in data and data.get("domains"):
            return {**data, "scopes": ["publish"]}
        return data

    @model_validator(mode="after")
    def _coherent(self) -> ApiClient:
        if not self.scopes:
            raise ValueError("give scopes (publish, read, admin), or a tool and its domains")
        if "publish" in self.scopes and (self.tool is None or not self.domains):
            raise ValueError("a publish key needs a tool and its domains")
        return self

    @property
    def label(self) -> str:
        """How messages name this key (never by the key or its digest)."""
        return self.name or self.tool or "an unnamed key"

    def has(self, scope: Scope) -> bool:
        """Whether this key has `scope`."""
        return scope in self.scopes

    def may_publish(self, domain: str) -> bool:
        """Whether this key may publish touchpoints of `domain`."""
        return "publish" in self.scopes and domain in self.domains


class ApiKeyConfigError(ValueError):
    """The API key configuration is not valid."""


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
        for e in exc.errors(include_url=False)
    )


def _entry_name(value: object, index: int) -> str:
    if isinstance(value, dict):
        for field in ("name", "tool"):
            if isinstance(value.get(field), str):
                return repr(value[field])
    return f"number {index + 1}"


def parse_api_keys(text: str, where: str = ENV_KEYS) -> dict[str, ApiClient]:
    """Parse ``{"sha256:…": {…}}`` into digest → client; raises `ApiKeyConfigError`."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ApiKeyConfigError(f"{where} is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ApiKeyConfigError(f"{where} must be a JSON object of sha256:<digest> -> entry")
    keys: dict[str, ApiClient] = {}
    for index, (digest, value) in enumerate(raw.items()):
        which = _entry_name(value, index)
        if not is_digest(digest):
            # Never echo it: it may be a live key.
            raise ApiKeyConfigError(
                f"{where}: entry {which} is not a key digest (sha256:<64 hex>); keys are stored "
                "hashed: `tandem keys hash` prints the digest of a key, `tandem keys create` "
                "makes a new one"
            )
        try:
            keys[digest] = ApiClient.model_validate(value)
        except ValidationError as exc:
            raise ApiKeyConfigError(f"{where}: entry {which}: {_problems(exc)}") from None
    return keys


def hashed(keys: Mapping[str, ApiClient]) -> dict[str, ApiClient]:
    """`keys` by digest: for keys given in code (tests, embedding), plain ones are hashed here,
    in memory; configuration holds digests only."""
    return {(k if is_digest(k) else key_digest(k)): client for k, client in keys.items()}


def load_api_keys(
    environ: Mapping[str, str] | None = None, default_file: Path | None = None
) -> dict[str, ApiClient]:
    """The API keys configured in the environment (see the module docstring); `default_file`
    is read, if it exists, when ``TANDEM_API_KEYS_FILE`` is not set."""
    env = os.environ if environ is None else environ
    keys: dict[str, ApiClient] = {}
    sources: list[tuple[str, str]] = []
    path = Path(env[ENV_KEYS_FILE]) if env.get(ENV_KEYS_FILE) else default_file
    if path is not None and (env.get(ENV_KEYS_FILE) or path.exists()):
        try:
            sources.append((str(path), path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise ApiKeyConfigError(f"{ENV_KEYS_FILE}: cannot read {path}: {exc}") from None
    if env.get(ENV_KEYS):
        sources.append((ENV_KEYS, env[ENV_KEYS]))
    for where, text in sources:
        for digest, client in parse_api_keys(text, where).items():
            if digest in keys:
                raise ApiKeyConfigError(f"{where}: the key of {client.label} is defined twice")
            keys[digest] = client
    return keys


FileStamp = tuple[int, int, int]


class KeyStore(Mapping[str, ApiClient]):
    """The configured keys by digest, read again when the keys file changes.

    The file's modification time, size and inode are looked at on a lookup, at most once per
    `recheck_s`; a changed file is read again (`tandem keys create` and `revoke` write a new
    file and rename it over the old one, so a reader never sees half a file). A file that no
    longer parses is logged and the keys read before are kept.
    """

    def __init__(
        self,
        load: Callable[[], dict[str, ApiClient]],
        path: Path | None,
        recheck_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load, self.path, self.recheck_s, self._clock = load, path, recheck_s, clock
        self._stamp = self._file_stamp()
        self._keys = load()
        self._checked = clock()

    def _file_stamp(self) -> FileStamp | None:
        if self.path is None:
            return None
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def refresh(self) -> None:
        """Read the keys again if the file changed (looked at once per `recheck_s` at most)."""
        now = self._clock()
        if self.path is None or now - self._checked < self.recheck_s:
            return
        self._checked = now
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        try:
            keys = self._load()
        except ApiKeyConfigError as exc:  # its messages never contain a key or a digest
            log.warning("API keys not reloaded, the previous ones stay in use: %s", exc)
            return
        self._keys, self._stamp = keys, stamp
        log.info("API keys reloaded from %s: %d key(s)", self.path, len(keys))

    def __getitem__(self, digest: str) -> ApiClient:
        self.refresh()
        return self._keys[digest]

    def __iter__(self) -> Iterator[str]:
        self.refresh()
        return iter(dict(self._keys))

    def __len__(self) -> int:
        self.refresh()
        return len(self._keys)


def authenticate(keys: Mapping[str, ApiClient], presented: str | None) -> ApiClient | None:
    """The client of a presented key (looked up by its digest); None if unknown."""
    if not presented:
        return None
    return keys.get(key_digest(presented))


_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`: an API key")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="`X-API-Key: <key>` (same keys as Bearer)"
)


def _client_of(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None,
    api_key: str | None,
) -> ApiClient:
    keys: Mapping[str, ApiClient] = request.app.state.api_keys
    presented = bearer.credentials if bearer is not None else api_key
    client = authenticate(keys, presented)
    if client is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or unknown API key: send `Authorization: Bearer <key>` or "
            "`X-API-Key: <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return client


def require_scope(scope: Scope) -> Callable[..., Awaitable[ApiClient]]:
    """A FastAPI dependency: the authenticated client if its key has `scope`; 401 without a
    known key, 403 with a key that lacks the scope."""

    async def dependency(
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        api_key: Annotated[str | None, Depends(_api_key_header)],
    ) -> ApiClient:
        client = _client_of(request, bearer, api_key)
        if not client.has(scope):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this API key ({client.label}) lacks the `{scope}` scope",
            )
        return client

    dependency.__name__ = f"require_{scope}_scope"
    return dependency


require_client = require_scope("publish")
"""FastAPI dependency of ingest: a key with the publish scope."""

Client = Annotated[ApiClient, Depends(require_client)]
"""A client whose key may publish, as a route parameter type."""
Reader = Annotated[ApiClient, Depends(require_scope("read"))]
"""A client whose key may read person-level data."""
Admin = Annotated[ApiClient, Depends(require_scope("admin"))]
"""A client whose key may run operations on people."""

_read_dependency = require_scope("read")


async def require_kpi_reader(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> ApiClient | None:
    """The KPI routes: open when ``Settings.public_kpis`` is on, else a read key."""
    if getattr(request.app.state.settings, "public_kpis", False):
        return None
    return await _read_dependency(request, bearer, api_key)


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no API key, or an unknown one"},
    403: {"description": "the API key lacks the scope this route needs"},
}
"""The answers of a route behind a scope, for its OpenAPI document."""

KpiReader = Annotated[ApiClient | None, Depends(require_kpi_reader)]
"""Who reads the aggregate KPIs: a read key, or anyone when they are public."""
