"""The live monitoring dashboard: static page and assets served by the hub (issue 7, docs/dashboard.md).

The SignalR browser bundles come from the npm packages pinned in `vendor/package-lock.json` (installed by
`scripts/install`, never committed) and are served at `/dashboard/vendor/<file>`.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
NODE_MODULES = Path(__file__).parent / "vendor" / "node_modules"
VENDOR_FILES = {
    f"{name}{suffix}": NODE_MODULES / "@microsoft" / package / "dist" / "browser" / f"{name}{suffix}"
    for package, name in (("signalr", "signalr"), ("signalr-protocol-msgpack", "signalr-protocol-msgpack"))
    for suffix in (".js", ".min.js", ".js.map", ".min.js.map")
}
"""The only files served from node_modules: the two browser bundles and their source maps."""
NOT_INSTALLED = ("The dashboard's browser bundles are not installed. Run ./scripts/install "
                 "(npm ci in hub/dashboard/vendor) and reload.\n")


async def _page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def _root(request: Request) -> Response:
    return RedirectResponse("/dashboard")


async def _vendor(request: Request) -> Response:
    path = VENDOR_FILES.get(request.path_params["name"])
    if path is None:
        return PlainTextResponse("Not found.\n", status_code=404)
    if not path.is_file():
        return PlainTextResponse(NOT_INSTALLED, status_code=503, headers={"Retry-After": "60"})
    media_type = "application/json" if path.suffix == ".map" else "text/javascript"
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-cache"})


def dashboard_routes() -> list[BaseRoute]:
    if not (STATIC / "index.html").exists():
        return []
    return [
        Route("/", _root),
        Route("/dashboard", _page),
        Route("/dashboard/vendor/{name}", _vendor),
        Mount("/dashboard/static", app=StaticFiles(directory=STATIC), name="dashboard-static"),
    ]
