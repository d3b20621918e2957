"""POST /api/v1/auth/token (and /login), JWTs on the REST API, and /api/v1/api-keys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import jwt
import pytest

from tests.rest_rig import JWT_SECRET, Rig, rig_fixture
from tests.rest_support import STORE_KINDS


@pytest.fixture(params=STORE_KINDS)
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(request, tmp_path, request.param)


def token(rig: Rig, who: str = "admin", path: str = "/api/v1/auth/token", **body: object) -> str:
    response = rig.request("POST", path, who, json=body) if body else rig.request("POST", path, who)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["tokenType"] == "Bearer" and set(data) == {"accessToken", "tokenType", "expiresIn"}
    return str(data["accessToken"])


def claims(tok: str) -> dict[str, object]:
    return dict(jwt.decode(tok, JWT_SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False,
                                                                            "verify_nbf": False}, issuer="voicehub"))


def test_token_from_api_key_and_its_use(rig: Rig) -> None:
    tok = token(rig)
    c = claims(tok)
    assert c["tid"] == "ten_a" and c["exp"] - c["iat"] == 900  # type: ignore[operator]
    assert set(str(c["scp"]).split()) == {"conversations:read", "conversations:write", "conversations:delete", "recordings:read",
                                          "keys:manage", "monitor:read"}
    assert rig.get("/api/v1/conversations", tok).json()["total"] == 3
    login = token(rig, path="/api/v1/auth/login")
    assert claims(login)["tid"] == "ten_a"
    response = rig.request("POST", "/api/v1/auth/token", json={"ttlSeconds": 60})
    assert response.json()["expiresIn"] == 60 and response.headers["cache-control"] == "no-store"
    assert rig.get("/api/v1/conversations", token(rig, "other")).json()["total"] == 1  # tenant from the token


def test_token_narrowing(rig: Rig) -> None:
    a, b = rig.convs["a"], rig.convs["b"]
    narrow = token(rig, scopes=["conversations:read"])
    assert claims(narrow)["scp"] == "conversations:read"
    assert rig.get("/api/v1/conversations", narrow).status_code == 200
    assert rig.request("DELETE", f"/api/v1/conversations/{a}", narrow).status_code == 403
    one = token(rig, scopes=["conversations:read", "conversations:write"], conversationId=a)
    assert claims(one)["conv"] == a
    assert rig.get(f"/api/v1/conversations/{a}", one).status_code == 200
    assert rig.get(f"/api/v1/conversations/{a}/transcript", one).status_code == 200
    assert rig.request("POST", f"/api/v1/conversations/{a}/tags", one, json={"tags": ["x"]}).status_code == 200
    restricted = rig.get(f"/api/v1/conversations/{b}", one)
    assert restricted.status_code == 403 and "restricted" in restricted.json()["detail"]
    assert rig.get("/api/v1/conversations/conv_unknown", one).status_code == 403
    assert rig.get("/api/v1/conversations", one).status_code == 403
    no_scopes = token(rig, scopes=[])
    assert rig.get("/api/v1/conversations", no_scopes).status_code == 403


def test_token_request_refusals(rig: Rig) -> None:
    beyond = rig.request("POST", "/api/v1/auth/token", "reader", json={"scopes": ["conversations:read", "keys:manage"]})
    assert beyond.status_code == 403 and "keys:manage" in beyond.json()["detail"]
    for bad in ({"scopes": ["root"]}, {"scopes": "conversations:read"}, {"ttlSeconds": 0}, {"ttlSeconds": 86401},
                {"ttlSeconds": "60"}, {"ttlSeconds": 1.5}, {"ttlSeconds": True}, {"conversationId": "abc"}, {"conversationId": 5},
                {"extra": 1}):
        assert rig.request("POST", "/api/v1/auth/token", json=bad).status_code == 400, bad
    jwt_caller = rig.request("POST", "/api/v1/auth/token", token(rig))
    assert jwt_caller.status_code == 401 and "API key" in jwt_caller.json()["detail"]
    assert rig.request("POST", "/api/v1/auth/token", None).status_code == 401
    assert rig.request("POST", "/api/v1/auth/token", "vsnp_live_" + "z" * 40).status_code == 401


def test_a_token_never_outlives_its_key(rig: Rig) -> None:
    rig.key("short", "ten_a", ["conversations:read"], expires_at=rig.clock() + timedelta(seconds=120))
    response = rig.request("POST", "/api/v1/auth/token", "short", json={"ttlSeconds": 900})
    assert response.json()["expiresIn"] == 120
    rig.clock.advance(120)
    assert rig.request("POST", "/api/v1/auth/token", "short").status_code == 401  # the key expired
    assert rig.get("/api/v1/conversations", "short").status_code == 401


def test_refused_tokens_on_rest(rig: Rig) -> None:
    now = int(rig.clock().timestamp())
    base = {"sub": "key_x", "tid": "ten_a", "scp": "conversations:read", "iat": now, "exp": now + 60, "iss": "voicehub"}
    tok = token(rig, ttlSeconds=30)
    rig.clock.advance(30)
    expired = rig.get("/api/v1/conversations", tok)
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    cases = {
        "alg none": jwt.encode(base, key="", algorithm="none"),
        "wrong secret": jwt.encode(base, "w" * 32, algorithm="HS256"),
        "not yet valid": jwt.encode({**base, "nbf": now + 300, "exp": now + 600}, JWT_SECRET, algorithm="HS256"),
        "expired": jwt.encode({**base, "iat": now - 120, "exp": now - 60}, JWT_SECRET, algorithm="HS256"),
    }
    for name, forged in cases.items():
        response = rig.get("/api/v1/conversations", forged)
        assert response.status_code == 401, name
        assert response.headers["content-type"] == "application/problem+json"
    rig.clock.value = rig.clock() - timedelta(seconds=30)
    good = jwt.encode({**base, "iat": int(rig.clock().timestamp())}, JWT_SECRET, algorithm="HS256")
    assert rig.get("/api/v1/conversations", good).status_code == 200


def test_api_keys_crud(rig: Rig) -> None:
    created = rig.request("POST", "/api/v1/api-keys", json={"name": "ci", "scopes": ["conversations:read"],
                                                             "expiresAt": "2026-12-31T23:59:59Z"})
    assert created.status_code == 201, created.text
    key = created.json()
    secret = key.pop("key")
    assert secret.startswith("vsnp_live_") and key["expiresAt"] == "2026-12-31T23:59:59Z" and key["tenantId"] == "ten_a"
    assert created.headers["location"] == f"/api/v1/api-keys/{key['id']}" and key["createdAt"] == "2025-06-18T14:23:40Z"
    assert rig.get("/api/v1/conversations", secret).json()["total"] == 3
    listed = rig.get("/api/v1/api-keys").json()
    assert listed["total"] == 3 and listed["data"][0] == key  # newest first, never the secret
    assert all("key" not in k and "keyHash" not in k for k in listed["data"])
    assert secret not in rig.get("/api/v1/api-keys").text
    assert rig.get("/api/v1/api-keys?sortOrder=asc&pageSize=1&page=3").json()["data"] == [key]
    assert rig.get(f"/api/v1/api-keys/{key['id']}").json() == key
    assert rig.get(f"/api/v1/api-keys/{key['id']}", "other").status_code == 404
    assert rig.request("DELETE", f"/api/v1/api-keys/{key['id']}", "other").status_code == 404
    assert rig.request("DELETE", f"/api/v1/api-keys/{key['id']}").status_code == 204
    assert rig.get("/api/v1/conversations", secret).status_code == 401
    assert rig.request("DELETE", f"/api/v1/api-keys/{key['id']}").status_code == 404
    assert rig.get("/api/v1/api-keys/key_nope").status_code == 404
    sandbox = rig.request("POST", "/api/v1/api-keys", json={"name": "sb", "scopes": ["monitor:read"], "environment": "sb"})
    assert sandbox.json()["key"].startswith("vsnp_sb_")


def test_api_key_creation_refusals(rig: Rig) -> None:
    for bad in ({"name": "x"}, {"scopes": ["conversations:read"]}, {"name": "", "scopes": ["conversations:read"]},
                {"name": "x", "scopes": []}, {"name": "x", "scopes": ["root"]}, {"name": 5, "scopes": ["conversations:read"]},
                {"name": "x", "scopes": ["conversations:read"], "expiresAt": "soon"},
                {"name": "x", "scopes": ["conversations:read"], "expiresAt": "2020-01-01T00:00:00Z"},
                {"name": "x", "scopes": ["conversations:read"], "environment": "prod"},
                {"name": "x", "scopes": ["conversations:read"], "tenantId": "ten_b"}, {"name": "x" * 101, "scopes": ["monitor:read"]}):
        assert rig.request("POST", "/api/v1/api-keys", json=bad).status_code == 400, bad
    escalate = rig.request("POST", "/api/v1/api-keys", json={"name": "x", "scopes": ["voice:session"]})
    assert escalate.status_code == 403 and "voice:session" in escalate.json()["detail"]
    narrowed = token(rig, scopes=["keys:manage"])
    assert rig.request("POST", "/api/v1/api-keys", narrowed, json={"name": "x", "scopes": ["conversations:read"]}).status_code == 403
    assert rig.get("/api/v1/api-keys", "reader").status_code == 403
    one = token(rig, conversationId=rig.convs["a"])
    assert rig.get("/api/v1/api-keys", one).status_code == 403
