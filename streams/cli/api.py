"""`tandem api`: serve the HTTP API (ingest, journeys, schemas) with uvicorn."""

from __future__ import annotations

import typer

from streams.cli import app
from streams.settings import get_settings


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", help="interface to listen on"),
    port: int | None = typer.Option(None, help="port (default: TANDEM_API_PORT or 8080)"),
) -> None:
    """Serve the HTTP API: POST /v1/events, GET /v1/journeys/{id}, /openapi.json."""
    import uvicorn

    from streams.api import create_app

    settings = get_settings()
    uvicorn.run(create_app(settings), host=host, port=port or settings.api_port)
