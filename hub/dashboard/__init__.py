"""The live monitoring dashboard: static page and assets served by the hub (issue 7)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


async def _page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def _root(request: Request) -> Response:
    return RedirectResponse("/dashboard")


def dashboard_routes() -> list[BaseRoute]:
    if not (STATIC / "index.html").exists():
        return []
    return [
        Route("/", _root),
        Route("/dashboard", _page),
        Mount("/dashboard/static", app=StaticFiles(directory=STATIC), name="dashboard-static"),
    ]
