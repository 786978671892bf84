"""`tandem keys create|list|revoke|hash`: the HTTP API's keys, stored hashed.

The keys file is ``TANDEM_API_KEYS_FILE`` (default ``<data_dir>/api-keys.json``): a JSON object of
``sha256:<digest>`` → ``{name, scopes, tool, domains, created_at}``. A new key is printed once,
on stdout alone (so ``KEY=$(tandem keys create --scope read)`` works); only its digest is kept.
Scopes and the format: `streams.api.auth`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from streams.cli import app
from streams.cli._common import console, err_console, fail, usage_error
from streams.settings import Settings, get_settings

keys_app = typer.Typer(
    help="Create, list and revoke API keys (stored hashed; scopes publish, read, admin).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


def keys_file(settings: Settings) -> Path:
    """Where the API reads its keys and `tandem keys` writes them."""
    from streams.api.auth import DEFAULT_KEYS_FILE

    return settings.api_keys_file or settings.data_dir / DEFAULT_KEYS_FILE


def _load(path: Path) -> dict[str, Any]:
    """The file's entries as JSON (validated), or nothing if it does not exist yet."""
    from streams.api.auth import ApiKeyConfigError, parse_api_keys

    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
        parse_api_keys(text, str(path))
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    except ApiKeyConfigError as exc:
        fail(str(exc))
    entries: dict[str, Any] = json.loads(text)
    return entries


def _save(path: Path, entries: dict[str, Any]) -> None:
    """Write atomically, readable by its owner only (the digests are not secrets, but the
    names and scopes are nobody else's business)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(entries, file, indent=2)
            file.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}")


@keys_app.command("create")
def create(
    scopes: list[str] = typer.Option(
        ..., "--scope", help="publish, read or admin (repeatable)", show_default=False
    ),
    name: str | None = typer.Option(None, "--name", help="who holds it, e.g. dashboard"),
    tool: str | None = typer.Option(None, "--tool", help="a publish key's tool, e.g. hubspot"),
    domains: list[str] = typer.Option(
        [], "--domain", help="a publish key's domain: marketing or sales (repeatable)"
    ),
) -> None:
    """Make a new API key: print it once, store only its SHA-256 digest in the keys file.

    Exit codes: 0 created, 1 the keys file is unreadable or invalid, 2 a bad option.
    """
    from pydantic import ValidationError

    from streams.api.auth import ApiClient, key_digest, new_key

    path = keys_file(get_settings())
    entries = _load(path)
    if name is not None and any(e.get("name") == name for e in entries.values()):
        usage_error(f"a key named {name!r} exists already in {path} (`tandem keys revoke`)")
    entry: dict[str, Any] = {
        "name": name,
        "scopes": sorted(set(scopes)),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if tool is not None:
        entry["tool"] = tool
    if domains:
        entry["domains"] = sorted(set(domains))
    try:
        ApiClient.model_validate(entry)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'key'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        usage_error(problems)
    key = new_key()
    entries[key_digest(key)] = {k: v for k, v in entry.items() if v is not None}
    _save(path, entries)
    typer.echo(key)
    err_console.print(
        f"created a {'+'.join(entry['scopes'])} key{f' named {name!r}' if name else ''} in "
        f"{path}: copy it now, it is not shown again (Tandem keeps only its SHA-256 digest)",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )


@keys_app.command("list")
def list_keys(
    as_json: bool = typer.Option(False, "--json", help="print the entries as JSON"),
) -> None:
    """The keys in the keys file: name, tool, scopes, domains, created (never the keys)."""
    path = keys_file(get_settings())
    entries = list(_load(path).values())
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    table = Table(title=f"API keys in {path}")
    for column in ("name", "scopes", "tool", "domains", "created"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            escape(entry.get("name") or "-"),
            ", ".join(entry.get("scopes") or ["publish"]),
            escape(entry.get("tool") or "-"),
            ", ".join(entry.get("domains") or []) or "-",
            entry.get("created_at") or "-",
        )
    console.print(table)


@keys_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="the name given at `tandem keys create`")) -> None:
    """Remove the key with this name from the keys file (a running API stops accepting it
    within a second).

    Exit codes: 0 revoked, 1 no key has this name.
    """
    path = keys_file(get_settings())
    entries = _load(path)
    kept = {d: e for d, e in entries.items() if e.get("name") != name}
    if len(kept) == len(entries):
        fail(f"no key named {name!r} in {path}")
    _save(path, kept)
    err_console.print(f"revoked {name!r} in {path}", highlight=False, markup=False)


@keys_app.command("hash")
def hash_key() -> None:
    """Print the digest of a key read from stdin, for a keys file entry (to move an existing
    key to hashed storage). Reading stdin keeps the key out of the shell's history."""
    from streams.api.auth import key_digest

    key = sys.stdin.readline().strip()
    if not key:
        usage_error("give the key on stdin, e.g. `tandem keys hash < key.txt`")
    if len(key) < 32:
        err_console.print(
            "warning: a key shorter than 32 characters may be guessed from its digest; "
            "prefer `tandem keys create`",
            highlight=False,
            markup=False,
        )
    typer.echo(key_digest(key))
