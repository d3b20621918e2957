"""A REST test rig: Starlette(routes=rest_routes(...)) under TestClient, keys of two tenants, seeded
conversations, and every answer checked against /openapi.json (status described, body valid)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jsonschema
import pytest
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from starlette.applications import Starlette
from starlette.testclient import TestClient

from hub.auth.keys import KeyStore
from hub.auth.tokens import TokenService
from hub.rest import RateLimitSettings, RestServices, recording_file_path, rest_routes
from hub.rest.openapi import build_openapi
from hub.store.base import ConversationStore
from tests.rest_support import SEED_ANALYSIS, SEED_COSTS, T0, FakeClock, close_store, make_key_store, make_store, turn

T = TypeVar("T")
JWT_SECRET = "j" * 32
RECORDING_SECRET = b"r" * 32
OPENAPI = build_openapi()
_REGISTRY: Registry[Any] = Registry().with_resource("urn:voicehub", DRAFT202012.create_resource(OPENAPI))
MP3 = bytes(range(256)) * 40  # 10,240 bytes standing in for an MP3


def _template_regex(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


_TEMPLATES = [(_template_regex(t), t) for t in OPENAPI["paths"]]


def check_against_openapi(method: str, path: str, response: httpx.Response) -> None:
    """The answer's status is documented for the operation and its JSON body validates against the schema."""
    template = next((t for rx, t in _TEMPLATES if rx.match(path)), None)
    op = "get" if method == "HEAD" else method.lower()
    status = str(response.status_code)
    content_type = response.headers.get("content-type", "")
    if template is None or op not in OPENAPI["paths"][template]:
        assert response.status_code in (404, 405), (method, path, response.status_code)
        schema, media = "#/components/schemas/Problem", "application/problem+json"
    else:
        documented = OPENAPI["paths"][template][op]["responses"]
        assert status in documented, f"{method} {template} answered {status}, documented {sorted(documented)}"
        content = documented[status].get("content")
        if not content:
            assert not response.content or method == "HEAD", (method, path, status)
            return
        media, spec = next(iter(content.items()))
        schema = spec["schema"].get("$ref")
        if schema is None:
            assert content_type.startswith(media)
            return
    assert content_type.startswith(media), (method, path, content_type)
    if method != "HEAD":
        validator = jsonschema.Draft202012Validator({"$ref": "urn:voicehub" + schema}, registry=_REGISTRY)
        validator.validate(response.json())


@dataclass
class Rig:
    client: TestClient
    services: RestServices
    clock: FakeClock
    store: ConversationStore
    key_store: KeyStore
    keys: dict[str, str] = field(default_factory=dict)
    convs: dict[str, str] = field(default_factory=dict)
    deleted: list[tuple[str, str]] = field(default_factory=list)

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run a store coroutine on the app's event loop (Redis connections belong to one loop)."""
        portal = self.client.portal
        assert portal is not None
        return portal.call(lambda: fn(*args, **kwargs))

    def auth(self, who: str | None) -> dict[str, str]:
        if who is None:
            return {}
        return {"Authorization": f"Bearer {self.keys.get(who, who)}"}

    def request(self, method: str, path: str, who: str | None = "admin", **kwargs: Any) -> httpx.Response:
        headers = {**self.auth(who), **kwargs.pop("headers", {})}
        response = self.client.request(method, path, headers=headers, **kwargs)
        check_against_openapi(method, path.split("?", 1)[0], response)
        return response

    def get(self, path: str, who: str | None = "admin", **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, who, **kwargs)

    def key(self, name: str, tenant: str, scopes: list[str], **kwargs: Any) -> str:
        kwargs.setdefault("created_at", self.clock())
        plaintext, _ = self.run(self.key_store.create_key, tenant, name=name, scopes=scopes, **kwargs)
        self.keys[name] = plaintext
        return plaintext


def seed(rig: Rig) -> None:
    """Three conversations in ten_a (one with transcript, costs, analysis, a recording file), one in ten_b."""
    run, store = rig.run, rig.store
    a = run(store.create_conversation, "ten_a", agent_id="agt_01", channel="phone", conversation_id="conv_01HXDEF456GHI",
            caller={"phoneNumber": "+14155550199", "country": "US"}, metadata={"customerId": "cust_12345"})["id"]
    run(store.add_turn, "ten_a", a, turn("turn_01", "agent", "Hello! How can I help?", 0.0, 3.2))
    run(store.add_turn, "ten_a", a, turn("turn_02", "user", "A question about my invoice.", 3.8, 6.4))
    run(store.set_costs, "ten_a", a, SEED_COSTS)
    run(store.set_analysis, "ten_a", a, SEED_ANALYSIS)
    run(store.add_tags, "ten_a", a, ["billing"])
    run(store.end_conversation, "ten_a", a, status="completed", reason="user_ended", ended_at=T0 + timedelta(seconds=227))
    path = recording_file_path(rig.services.data_dir, "ten_a", a)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(MP3)
    run(store.set_recording, "ten_a", a, path=str(path.relative_to(rig.services.data_dir)), duration_seconds=227)
    b = run(store.create_conversation, "ten_a", agent_id="agt_02", channel="webrtc", direction="outbound",
            started_at=T0 + timedelta(days=1))["id"]
    run(store.end_conversation, "ten_a", b, status="failed", reason="x", ended_at=T0 + timedelta(days=1, seconds=30))
    run(store.update_conversation, "ten_a", b, {"outcome": "escalated"})
    c = run(store.create_conversation, "ten_a", agent_id="agt_01", channel="sms", started_at=T0 + timedelta(days=2))["id"]
    run(store.add_tags, "ten_a", c, ["billing", "vip"])
    other = run(store.create_conversation, "ten_b", agent_id="agt_01", channel="phone", started_at=T0 + timedelta(hours=1))["id"]
    rig.convs.update(a=a, b=b, c=c, other=other)
    rig.clock.value = T0 + timedelta(days=2, seconds=100)  # c has been live for 100 s


def make_rig(redis_url: str | None, data_dir: Path, *, rate_limits: RateLimitSettings | None = None,
             seeded: bool = True, **service_kwargs: Any) -> Iterator[Rig]:
    clock = FakeClock()
    store = make_store(redis_url, clock)
    key_store = make_key_store(redis_url)
    deleted: list[tuple[str, str]] = []

    async def on_delete(tenant: str, conversation_id: str) -> None:
        deleted.append((tenant, conversation_id))

    services = RestServices(store=store, key_store=key_store, token_service=TokenService(JWT_SECRET, now=clock),
                            recording_secret=RECORDING_SECRET, data_dir=data_dir,
                            rate_limits=rate_limits or RateLimitSettings(enabled=False), on_delete=on_delete, clock=clock,
                            **service_kwargs)
    app = Starlette(routes=rest_routes(services))
    with TestClient(app, base_url="http://127.0.0.1:8000", raise_server_exceptions=False) as client:
        rig = Rig(client, services, clock, store, key_store, deleted=deleted)
        try:
            rig.key("admin", "ten_a", ["conversations:read", "conversations:write", "conversations:delete", "recordings:read",
                                       "keys:manage", "monitor:read"])
            rig.key("reader", "ten_a", ["conversations:read"])
            rig.key("other", "ten_b", ["conversations:read", "conversations:write", "conversations:delete", "recordings:read",
                                       "keys:manage"])
            if seeded:
                seed(rig)
            yield rig
        finally:
            rig.run(close_store, store)
            rig.run(close_store, key_store)


def rig_fixture(request: pytest.FixtureRequest, tmp_path: Path, kind: str = "memory", **kwargs: Any) -> Iterator[Rig]:
    url = str(request.getfixturevalue("redis_url")) if kind == "redis" else None
    yield from make_rig(url, tmp_path, **kwargs)
