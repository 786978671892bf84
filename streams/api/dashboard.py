"""The dashboard: one self-contained HTML page served at ``GET /`` (and ``/dashboard``).

The page (``streams/api/static/dashboard.html``) has no external assets — no CDN, no build
step — because Tandem runs on machines without Internet access. Its JavaScript reads the same
endpoints as any other client, ``GET /v1/kpis`` and ``GET /v1/journeys``, with an API key that has
the ``read`` scope: typed into its form, or given once in the URL as ``/#key=<key>`` (a fragment
never reaches the server; the page removes it at once). The key stays in the tab's
sessionStorage. The page itself needs no key: it holds no data.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["dashboard"])


@cache
def dashboard_html() -> str:
    """The page, read once from the package data."""
    return files("streams.api").joinpath("static/dashboard.html").read_text("utf-8")


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
async def dashboard() -> HTMLResponse:
    """The KPI funnel and the journeys, refreshed every few seconds."""
    # no-cache: after an upgrade, browsers must not keep an old page talking to a new API.
    return HTMLResponse(dashboard_html(), headers={"Cache-Control": "no-cache"})


__all__ = ["dashboard_html", "router"]
