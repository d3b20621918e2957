"""Credentials (issue 8, point 6) on a real hub process with Redis:

- JWTs refused on the hub (negotiate 401, empty body) and on REST (401 problem): alg none (any case), alg confusion
  (an RS256 or HS512 header over an HMAC signature made with the hub's secret), wrong secret, expired, not yet valid
  (nbf or iat in the future), no expiry, another issuer; API keys on the hub; a token without the mode's scope (403);
  a token restricted to one conversation reaches no other.
- API keys are stored as hashes only (no plaintext key or issued token anywhere in Redis) and compared in constant time.
- Tokens and keys never appear in the hub's log or in /metrics, whichever transport carried them.
- CORS is closed by default and opens only for the configured origins.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from redis.asyncio import Redis

from hub.auth import keys as key_module
from hub.auth.keys import principal_for_key
from hub.auth.keystore import MemoryKeyStore
from hub.client.signalr import HubClient, HubError
from hub.client.voice import VoiceCaller
from tests.reliability_rig import BOOTSTRAP_KEY, SECRET, HubProcess, token

NEGOTIATE = "/hubs/voice/negotiate?negotiateVersion=1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": "key_x", "tid": "ten_default", "scp": "monitor:read voice:session conversations:read",
                              "iat": now, "exp": now + 600, "iss": "voicehub"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _forged(header: dict[str, Any], claims: dict[str, Any], key: bytes = SECRET.encode(), digest: Any = hashlib.sha256,
            signature: bool = True) -> str:
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    sig = _b64(hmac.new(key, signing_input.encode(), digest).digest()) if signature else ""
    return signing_input + "." + sig


def _refused_tokens() -> dict[str, str]:
    now = int(time.time())
    return {
        "alg none": _forged({"alg": "none", "typ": "JWT"}, _claims(), signature=False),
        "alg None": _forged({"alg": "None", "typ": "JWT"}, _claims(), signature=False),
        "alg none, signed": _forged({"alg": "none", "typ": "JWT"}, _claims()),
        "RS256 header, HMAC signature with the secret": _forged({"alg": "RS256", "typ": "JWT"}, _claims()),
        "HS512 with the secret": _forged({"alg": "HS512", "typ": "JWT"}, _claims(), digest=hashlib.sha512),
        "wrong secret": jwt.encode(_claims(), "another-secret-of-enough-length-0123456789", algorithm="HS256"),
        "expired": jwt.encode(_claims(iat=now - 700, exp=now - 100), SECRET, algorithm="HS256"),
        "not yet valid (nbf)": jwt.encode(_claims(nbf=now + 300), SECRET, algorithm="HS256"),
        "issued in the future (iat)": jwt.encode(_claims(iat=now + 300), SECRET, algorithm="HS256"),
        "no expiry": jwt.encode(_claims(exp=None), SECRET, algorithm="HS256"),
        "another issuer": jwt.encode(_claims(iss="someone"), SECRET, algorithm="HS256"),
        "no tenant": jwt.encode(_claims(tid=None), SECRET, algorithm="HS256"),
        "api key": BOOTSTRAP_KEY,
        "garbage": "not.a.token",
    }


def test_forged_expired_and_foreign_tokens_are_refused_on_hub_and_rest(redis_url: str) -> None:
    async def main(hub: HubProcess) -> None:
        good = jwt.encode(_claims(), SECRET, algorithm="HS256")
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.post(hub.base + NEGOTIATE, headers={"Authorization": f"Bearer {good}"})).status_code == 200
            for name, bad in _refused_tokens().items():
                for where in ("header", "query"):
                    answer = await (http.post(hub.base + NEGOTIATE, headers={"Authorization": f"Bearer {bad}"})
                                    if where == "header" else http.post(hub.base + NEGOTIATE + f"&access_token={bad}"))
                    assert (answer.status_code, answer.text) == (401, ""), (name, where)
                if name != "api key":
                    rest = await http.get(hub.base + "/api/v1/conversations", headers={"Authorization": f"Bearer {bad}"})
                    assert rest.status_code == 401 and rest.headers["content-type"] == "application/problem+json", name
                    assert rest.headers["www-authenticate"].startswith("Bearer"), name
            caller_only = jwt.encode(_claims(scp="voice:session"), SECRET, algorithm="HS256")
            assert (await http.post(hub.base + NEGOTIATE,
                                    headers={"Authorization": f"Bearer {caller_only}"})).status_code == 403
            ws = hub.base.replace("http://", "ws://") + "/hubs/voice"  # the WebSocket without negotiate: refused too
            from websockets.exceptions import InvalidStatus
            from websockets.sync.client import connect

            for bad in (_refused_tokens()["alg none"], BOOTSTRAP_KEY):
                with pytest.raises(InvalidStatus) as refused:
                    connect(f"{ws}?access_token={bad}", open_timeout=5).close()
                assert refused.value.response.status_code == 401
        # a token restricted to one conversation reaches no other
        caller = await VoiceCaller.connect(hub.base, await token(hub.base))
        other = await VoiceCaller.connect(hub.base, await token(hub.base))
        restricted = jwt.encode(_claims(conv=caller.conversation_id), SECRET, algorithm="HS256")
        monitor = await HubClient.connect(hub.base + "/hubs/voice", token=restricted)
        try:
            await monitor.invoke("Subscribe", caller.conversation_id)
            with pytest.raises(HubError, match="restricted to another conversation"):
                await monitor.invoke("Subscribe", other.conversation_id)
            assert [c["id"] for c in await monitor.invoke("ListConversations")] == [caller.conversation_id]
        finally:
            await monitor.close()
            await caller.close()
            await other.close()

    with HubProcess(redis_url) as hub:
        asyncio.run(main(hub))


def test_api_keys_are_stored_hashed_and_compared_in_constant_time(redis_url: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    async def main(hub: HubProcess) -> list[str]:
        secrets = [BOOTSTRAP_KEY]
        async with httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"}) as http:
            created = (await http.post(hub.base + "/api/v1/api-keys", json={"name": "ci", "scopes": ["monitor:read"]})).json()
            secrets.append(created["key"])
            assert "keyHash" not in created and created["prefix"] == created["key"][:len(created["prefix"])]
            secrets.append(await token(hub.base))
            secrets.append(await token(hub.base, ["monitor:read"], key=created["key"]))
        redis = Redis.from_url(redis_url)
        try:
            dump = b""
            async for key in redis.scan_iter("*"):
                kind = (await redis.type(key)).decode()
                dump += key + b"\n"
                if kind == "string":
                    dump += (await redis.get(key)) or b""
                elif kind == "hash":
                    dump += b"".join(k + v for k, v in (await redis.hgetall(key)).items())
                elif kind == "set":
                    dump += b"".join(await redis.smembers(key))
                elif kind == "zset":
                    dump += b"".join(await redis.zrange(key, 0, -1))
        finally:
            await redis.aclose()
        for secret in secrets:
            assert secret.encode() not in dump, "a plaintext credential is stored in Redis"
        assert hashlib.sha256(BOOTSTRAP_KEY.encode()).hexdigest().encode() in dump
        return secrets

    with HubProcess(redis_url) as hub:
        asyncio.run(main(hub))

    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    async def lookup() -> None:
        store = MemoryKeyStore()
        key, _ = await store.create_key("ten_a", name="k", scopes=["monitor:read"])
        monkeypatch.setattr(key_module.hmac, "compare_digest", spy)
        assert (await principal_for_key(store, key)).tenant_id == "ten_a"

    asyncio.run(lookup())
    assert compared and all(len(a) == 64 and a == b for a, b in compared)  # hashes, compared with compare_digest


def test_tokens_never_reach_the_log_or_metrics(redis_url: str) -> None:
    async def main(hub: HubProcess) -> list[str]:
        tok = await token(hub.base)
        bad = jwt.encode(_claims(), "wrong-secret-of-sufficient-length-0123456789", algorithm="HS256")
        async with httpx.AsyncClient(timeout=10) as http:
            await http.post(hub.base + NEGOTIATE + f"&access_token={bad}")
            for accept in ("*/*", "text/event-stream"):
                negotiated = (await http.post(hub.base + NEGOTIATE + f"&access_token={tok}")).json()
                url = f"{hub.base}/hubs/voice?id={negotiated['connectionToken']}&access_token={tok}"
                if accept == "*/*":
                    await http.get(url)  # long polling: first poll
                    await http.delete(url)
                else:
                    async with http.stream("GET", url, headers={"Accept": accept}) as stream:
                        await stream.aiter_bytes().__anext__()
            await http.get(hub.base + "/api/v1/conversations", headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"})
            await http.get(hub.base + f"/api/v1/conversations?access_token={tok}")
        caller = await VoiceCaller.connect(hub.base, tok)  # WebSocket with ?access_token=
        monitor = await HubClient.connect(hub.base + "/hubs/voice", token=tok)
        await monitor.close()
        await caller.end("user_ended")
        await caller.close()
        async with httpx.AsyncClient(timeout=10) as http:
            metrics = (await http.get(hub.base + "/metrics")).text
        return [tok, bad, metrics]

    with HubProcess(redis_url) as hub:
        tok, bad, metrics = asyncio.run(main(hub))
        log = hub.log()
    assert "access_token=" in log  # the requests were logged...
    for secret in (tok, bad, BOOTSTRAP_KEY):
        signature = secret.rsplit(".", 1)[-1]
        assert secret not in log and signature not in log, "a credential reached the log"  # ...without their token
        assert secret not in metrics and signature not in metrics


def _preflight(base: str, origin: str, path: str = "/api/v1/conversations", method: str = "GET") -> httpx.Response:
    return httpx.options(base + path, timeout=5, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type"})


def test_cors_is_closed_by_default_and_opens_for_configured_origins() -> None:
    with HubProcess() as hub:
        for answer in (_preflight(hub.base, "https://evil.example"),
                       httpx.get(hub.base + "/healthz", headers={"Origin": "https://evil.example"}, timeout=5)):
            assert "access-control-allow-origin" not in answer.headers
    with HubProcess(None, "--cors-origins", "https://dash.example, https://ops.example") as hub:
        allowed = _preflight(hub.base, "https://dash.example")
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://dash.example"
        assert allowed.headers["access-control-allow-credentials"] == "true"
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        negotiate = _preflight(hub.base, "https://ops.example", "/hubs/voice/negotiate", "POST")
        assert negotiate.headers["access-control-allow-origin"] == "https://ops.example"
        refused = _preflight(hub.base, "https://evil.example")
        assert "access-control-allow-origin" not in refused.headers
        simple = httpx.get(hub.base + "/healthz", headers={"Origin": "https://dash.example"}, timeout=5)
        assert simple.headers["access-control-allow-origin"] == "https://dash.example"
        assert "x-trace-id" in simple.headers.get("access-control-expose-headers", "").lower()
