"""`tandem api`: serve the HTTP API (ingest, journeys, schemas) with uvicorn."""

from __future__ import annotations

import typer

from streams.cli import app
from streams.cli._common import usage_error
from streams.settings import get_settings


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int | None = typer.Option(None, help="port (default: TANDEM_API_PORT or 8080)"),
) -> None:
    """Serve the HTTP API: POST /v1/events, GET /v1/journeys/{id}, /openapi.json.

    Requests need API keys (`tandem keys create`), except the KPIs if TANDEM_PUBLIC_KPIS=true.
    Exit codes: 2 the API keys' configuration is invalid.
    """
    import uvicorn

    from streams.api import create_app
    from streams.api.auth import ApiKeyConfigError

    settings = get_settings()
    try:
        api_app = create_app(settings)
    except ApiKeyConfigError as exc:
        usage_error(str(exc))
    uvicorn.run(api_app, host=host, port=port or settings.api_port)
