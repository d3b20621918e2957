"""JWTs: round trip, narrowing claims, and every way a token is refused."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from hub.auth.principal import AuthError, Principal
from hub.auth.tokens import TokenService
from tests.rest_support import T0, FakeClock

SECRET = "s" * 32
P = Principal("key_1", "ten_a", frozenset({"monitor:read", "conversations:read"}), None, "jwt")


def claims(**over: object) -> dict[str, object]:
    now = int(T0.timestamp())
    base: dict[str, object] = {"sub": "key_1", "tid": "ten_a", "scp": "monitor:read", "iat": now, "exp": now + 60, "iss": "voicehub"}
    return {k: v for k, v in {**base, **over}.items() if v is not None}


def refused(service: TokenService, token: str) -> AuthError:
    with pytest.raises(AuthError) as info:
        service.verify(token)
    assert info.value.status == 401
    return info.value


def test_round_trip_claims() -> None:
    clock = FakeClock()
    service = TokenService(SECRET, now=clock)
    token = service.issue(Principal("key_1", "ten_a", P.scopes, "conv_1"), 900)
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False}, issuer="voicehub")
    assert decoded["scp"] == "conversations:read monitor:read" and decoded["tid"] == "ten_a" and decoded["conv"] == "conv_1"
    assert decoded["exp"] - decoded["iat"] == 900 and decoded["sub"] == "key_1"
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    back = service.verify(token)
    assert back == Principal("key_1", "ten_a", P.scopes, "conv_1", "jwt")
    assert back.may_access("conv_1") and not back.may_access("conv_2")
    assert "conv" not in jwt.decode(service.issue(P, 60), options={"verify_signature": False})


def test_expired_and_not_yet_valid_tokens() -> None:
    clock = FakeClock()
    service = TokenService(SECRET, now=clock)
    token = service.issue(P, 60)
    clock.advance(59)
    service.verify(token)
    clock.advance(1)
    assert refused(service, token).code == "expired_token"
    now = int(clock().timestamp())
    future = jwt.encode(claims(iat=now, nbf=now + 30, exp=now + 90), SECRET, algorithm="HS256")
    assert "not valid yet" in refused(service, future).detail
    issued_later = jwt.encode(claims(iat=now + 30, exp=now + 90), SECRET, algorithm="HS256")
    refused(service, issued_later)
    assert TokenService(SECRET, now=clock, leeway_seconds=60).verify(future).tenant_id == "ten_a"


def test_forged_and_malformed_tokens_are_refused() -> None:
    service = TokenService(SECRET, now=FakeClock())
    good = jwt.encode(claims(), SECRET, algorithm="HS256")
    service.verify(good)
    none_token = jwt.encode(claims(scp="keys:manage"), key="", algorithm="none")
    assert "algorithm" in refused(service, none_token).detail
    unsigned = good.rsplit(".", 1)[0] + "."
    refused(service, unsigned)
    refused(service, jwt.encode(claims(), "w" * 32, algorithm="HS256"))
    refused(service, jwt.encode(claims(), SECRET * 2, algorithm="HS512"))
    head, body, sig = good.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=="))
    payload["tid"] = "ten_b"
    tampered = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    refused(service, f"{head}.{tampered}.{sig}")
    for bad in (claims(tid=None), claims(exp=None), claims(sub=None), claims(iss="someone-else"), claims(iss=None),
                claims(scp=["a"]), claims(exp="soon"), claims(conv=5), claims(tid=7)):
        refused(service, jwt.encode(bad, SECRET, algorithm="HS256"))
    for junk in ("", "abc", "a.b.c", "vsnp_live_x"):
        refused(service, junk)
    with pytest.raises(ValueError):
        TokenService("")


def test_real_clock_default() -> None:
    service = TokenService(SECRET)
    token = service.issue(P, 5)
    assert jwt.decode(token, options={"verify_signature": False})["exp"] <= int(time.time()) + 5
    assert service.verify(token).scopes == P.scopes
