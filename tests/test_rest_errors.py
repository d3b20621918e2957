"""Every failure is an RFC 7807 problem: malformed input, wrong types, bad dates, paging, 401/403/404/405/413/415/500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.store.memory import MemoryConversationStore
from tests.rest_rig import Rig, rig_fixture


@pytest.fixture
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(request, tmp_path)


def problem(response: httpx.Response, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail", "traceId"}
    assert body["status"] == status and body["title"] and body["detail"]
    assert body["type"].startswith("https://docs.voisnap.ai/errors/")
    assert body["traceId"].startswith("trace_") and response.headers["x-trace-id"] == body["traceId"]
    if slug is not None:
        assert body["type"].endswith("/" + slug), body["type"]
    return body


def test_bad_query_parameters(rig: Rig) -> None:
    for query in ("page=0", "page=-1", "page=abc", "page=1.5", "page=10000001", "pageSize=0", "pageSize=101", "pageSize=x",
                  "page=1&page=2", "channel=pigeon", "status=done", "direction=sideways", "sortBy=name", "sortOrder=up",
                  "sortOrder=DESC", "minDuration=-1", "minDuration=1.5", "minDuration=ten", "dateFrom=yesterday",
                  "dateFrom=2025-13-01", "dateTo=2025-06-31", "dateFrom=2025-06-16T25:00:00Z", "dateFrom=1718540000",
                  "dateFrom=2025-06-30&dateTo=2025-06-01", "tags=a%20b", "tags=" + "x" * 65, "status=completed&status=failed"):
        body = problem(rig.get("/api/v1/conversations?" + query), 400, "validation-error")
        assert "'" in body["detail"], query


def test_bad_bodies(rig: Rig) -> None:
    a = rig.convs["a"]
    url = f"/api/v1/conversations/{a}/tags"
    json_headers = {"Content-Type": "application/json"}
    problem(rig.request("POST", url, content=b"{not json", headers=json_headers), 400, "malformed-json")
    problem(rig.request("POST", url, content=b'{"tags": ["a"]', headers=json_headers), 400, "malformed-json")
    problem(rig.request("POST", url, content=b"\xff\xfe", headers=json_headers), 400, "malformed-json")
    problem(rig.request("POST", url, content=b"", headers=json_headers), 400)
    problem(rig.request("POST", url, json=["billing"]), 400, "validation-error")
    problem(rig.request("POST", url, json="billing"), 400, "validation-error")
    problem(rig.request("POST", url, content=b"null", headers=json_headers), 400, "validation-error")
    problem(rig.request("POST", url, content=b"tags=a", headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    problem(rig.request("POST", url, content=b'{"tags": ["a"]}', headers={"Content-Type": "text/plain"}), 415)
    ok = rig.request("POST", url, content=b'{"tags": ["a"]}', headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 200
    problem(rig.request("POST", url, json={"tags": ["a" * 60] * 2000}), 413)
    problem(rig.request("PUT", f"/api/v1/conversations/{a}/outcome", json={"outcome": ["resolved"]}), 400)


def test_credentials(rig: Rig) -> None:
    url = "/api/v1/conversations"
    missing = rig.get(url, None)
    problem(missing, 401, "unauthorized")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer vsnp_live_" + "x" * 40, "Bearer not.a.jwt", "Token abc"):
        problem(rig.client.get(url, headers={"Authorization": header}), 401)
    problem(rig.get("/api/v1/api-keys", "reader"), 403, "insufficient-scope")
    problem(rig.request("POST", f"/api/v1/conversations/{rig.convs['a']}/tags", "reader", json={"tags": ["x"]}), 403)
    problem(rig.request("PUT", f"/api/v1/conversations/{rig.convs['a']}/outcome", "reader", json={"outcome": "x"}), 403)
    problem(rig.get(f"/api/v1/conversations/{rig.convs['a']}/recording", "reader"), 403)
    rig.key("keys-only", "ten_a", ["keys:manage"])
    problem(rig.get(url, "keys-only"), 403, "insufficient-scope")
    # the scope is checked before the id: no existence leak to a caller without the scope
    problem(rig.get("/api/v1/conversations/conv_nope", "keys-only"), 403)


def test_unknown_paths_and_methods(rig: Rig) -> None:
    a = rig.convs["a"]
    problem(rig.get("/api/v1/nothing"), 404, "not-found")
    problem(rig.get(f"/api/v1/conversations/{a}/nothing"), 404)
    problem(rig.get("/api/v1/conversations/"), 404)
    for method, path, allow in (("POST", "/api/v1/conversations", "GET, HEAD"),
                                ("PATCH", f"/api/v1/conversations/{a}", "DELETE, GET, HEAD"),
                                ("GET", f"/api/v1/conversations/{a}/tags", "POST"),
                                ("POST", f"/api/v1/conversations/{a}/outcome", "PUT"),
                                ("GET", "/api/v1/auth/token", "POST"),
                                ("PUT", "/api/v1/api-keys", "GET, HEAD, POST"),
                                ("DELETE", "/openapi.json", "GET, HEAD")):
        response = rig.request(method, path)
        problem(response, 405, "method-not-allowed")
        assert response.headers["allow"] == allow, (method, path)


class _BrokenStore(MemoryConversationStore):
    async def list_conversations(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")


def test_unexpected_failures_are_500_problems(request: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for rig in rig_fixture(request, tmp_path, seeded=False):
        rig.services.store = _BrokenStore()
        body = problem(rig.get("/api/v1/conversations"), 500, "internal-error")
        assert "disk on fire" not in body["detail"]
        assert body["traceId"] in caplog.text and "disk on fire" in caplog.text

    async def failing_hook(tenant: str, conversation_id: str) -> None:
        raise OSError("broker down")

    for rig in rig_fixture(request, tmp_path / "2"):
        rig.services.on_delete = failing_hook
        problem(rig.request("DELETE", f"/api/v1/conversations/{rig.convs['a']}"), 500)
        assert rig.get(f"/api/v1/conversations/{rig.convs['a']}").status_code == 200  # nothing deleted: retry works
