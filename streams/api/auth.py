"""API keys: one per publishing tool, each allowed to publish some domains.

Configuration (JSON), from the environment:

- ``TANDEM_API_KEYS``: ``{"<key>": {"tool": "hubspot", "domains": ["marketing"]}, …}``
- ``TANDEM_API_KEYS_FILE``: the path of a file holding the same JSON.

Both may be set (the key sets are merged; a key defined twice is an error). With no keys
configured every ingest request is refused (401): there is no anonymous publishing.

Clients present their key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from events.envelope import Domain

ENV_KEYS = "TANDEM_API_KEYS"
ENV_KEYS_FILE = "TANDEM_API_KEYS_FILE"


class ApiClient(BaseModel):
    """The publishing tool behind an API key, and the domains it may publish."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str = Field(min_length=1, max_length=128, description="e.g. hubspot, salesforce")
    domains: frozenset[Domain] = Field(
        min_length=1, description="which touchpoint domains this key may publish"
    )

    def may_publish(self, domain: str) -> bool:
        """Whether this client may publish touchpoints of `domain`."""
        return domain in self.domains


class ApiKeyConfigError(ValueError):
    """The API key configuration is not valid."""


def parse_api_keys(text: str, where: str = ENV_KEYS) -> dict[str, ApiClient]:
    """Parse ``{"<key>": {"tool": …, "domains": […]}}``; raises `ApiKeyConfigError`."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ApiKeyConfigError(f"{where} is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ApiKeyConfigError(f"{where} must be a JSON object of key -> {{tool, domains}}")
    keys: dict[str, ApiClient] = {}
    for key, value in raw.items():
        if not key.strip() or key != key.strip():
            raise ApiKeyConfigError(f"{where}: API keys must be non-empty, without spaces")
        try:
            keys[key] = ApiClient.model_validate(value)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise ApiKeyConfigError(f"{where}: key ending …{key[-4:]}: {problems}") from None
    return keys


def load_api_keys(environ: Mapping[str, str] | None = None) -> dict[str, ApiClient]:
    """The API keys configured in the environment (see the module docstring)."""
    env = os.environ if environ is None else environ
    keys: dict[str, ApiClient] = {}
    sources: list[tuple[str, str]] = []
    if env.get(ENV_KEYS_FILE):
        path = Path(env[ENV_KEYS_FILE])
        try:
            sources.append((str(path), path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise ApiKeyConfigError(f"{ENV_KEYS_FILE}: cannot read {path}: {exc}") from None
    if env.get(ENV_KEYS):
        sources.append((ENV_KEYS, env[ENV_KEYS]))
    for where, text in sources:
        for key, client in parse_api_keys(text, where).items():
            if key in keys:
                raise ApiKeyConfigError(f"{where}: a key (ending …{key[-4:]}) is defined twice")
            keys[key] = client
    return keys


def authenticate(keys: Mapping[str, ApiClient], presented: str | None) -> ApiClient | None:
    """The client of a presented key, compared in constant time; None if unknown."""
    if not presented:
        return None
    candidate = presented.encode("utf-8")
    found: ApiClient | None = None
    for key, client in keys.items():
        if hmac.compare_digest(key.encode("utf-8"), candidate):
            found = client
    return found


_bearer = HTTPBearer(
    auto_error=False, description="`Authorization: Bearer <key>`: the publishing tool's API key"
)
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="`X-API-Key: <key>` (same keys as Bearer)"
)


async def require_client(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> ApiClient:
    """FastAPI dependency: the authenticated client, or 401."""
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


Client = Annotated[ApiClient, Depends(require_client)]
"""The authenticated client, as a route parameter type."""
