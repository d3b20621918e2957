"""What the hub serves for the dashboard: the page, its static files, and the SignalR browser bundles from
hub/dashboard/vendor/node_modules (503 with a hint when `npm ci` has not run there)."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

import hub.dashboard as dashboard


def client() -> TestClient:
    return TestClient(Starlette(routes=dashboard.dashboard_routes()))


def test_page_and_static_files() -> None:
    with client() as http:
        page = http.get("/dashboard")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "/dashboard/vendor/signalr.min.js" in page.text and "/dashboard/vendor/signalr-protocol-msgpack.min.js" in page.text
        assert http.get("/dashboard/static/js/main.js").status_code == 200
        assert http.get("/dashboard/static/js/worklets/playback.js").status_code == 200
        assert http.get("/", follow_redirects=False).headers["location"] == "/dashboard"


@pytest.mark.skipif(not dashboard.VENDOR_FILES["signalr.min.js"].is_file(), reason="npm ci has not run in hub/dashboard/vendor")
def test_vendor_bundles_are_served_from_node_modules() -> None:
    with client() as http:
        for name in ("signalr.min.js", "signalr-protocol-msgpack.min.js", "signalr.js", "signalr-protocol-msgpack.js"):
            response = http.get(f"/dashboard/vendor/{name}")
            assert response.status_code == 200, name
            assert response.headers["content-type"].startswith("text/javascript")
            assert response.content == dashboard.VENDOR_FILES[name].read_bytes()
        assert http.get("/dashboard/vendor/signalr.min.js.map").headers["content-type"].startswith("application/json")


def test_only_the_bundles_are_served_from_node_modules() -> None:
    with client() as http:
        assert http.get("/dashboard/vendor/package.json").status_code == 404
        assert http.get("/dashboard/vendor/..%2Fpackage.json").status_code == 404
        assert http.get("/dashboard/vendor/ws").status_code == 404


def test_missing_bundles_answer_503_with_a_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(dashboard, "VENDOR_FILES", {name: tmp_path / name for name in dashboard.VENDOR_FILES})
    with client() as http:
        response = http.get("/dashboard/vendor/signalr.min.js")
        assert response.status_code == 503
        assert "./scripts/install" in response.text
