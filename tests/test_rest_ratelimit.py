"""Rate limits: token buckets per credential, headers on every answer, 429 problems with Retry-After."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.rest.ratelimit import DEFAULT_POLICIES, RateLimiter, RateLimitSettings, RatePolicy
from tests.rest_rig import Rig, rig_fixture

SMALL = RateLimitSettings(policies={"api-read": RatePolicy(3, 60), "api-write": RatePolicy(2, 60), "auth": RatePolicy(2, 60),
                                    "recordings": RatePolicy(5, 60), "anonymous": RatePolicy(2, 60)})


@pytest.fixture
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    yield from rig_fixture(request, tmp_path, rate_limits=SMALL)


def headers(response: object) -> tuple[int, int, int, str]:
    h = response.headers  # type: ignore[attr-defined]
    return int(h["x-ratelimit-limit"]), int(h["x-ratelimit-remaining"]), int(h["x-ratelimit-reset"]), h["x-ratelimit-policy"]


def test_bucket_headers_429_and_refill(rig: Rig) -> None:
    now = int(rig.clock().timestamp())
    seen = [headers(rig.get("/api/v1/conversations")) for _ in range(3)]
    assert [s[1] for s in seen] == [2, 1, 0] and all(s[0] == 3 and s[3] == "api-read" for s in seen)
    assert seen[2][2] == now + 60  # empty bucket: full again after the whole window
    refused = rig.get("/api/v1/conversations")
    assert refused.status_code == 429 and refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert body["title"] == "Rate Limit Exceeded" and body["type"] == "https://docs.voisnap.ai/errors/rate-limit-exceeded"
    assert body["detail"].startswith("You have exceeded the api-read rate limit of 3")
    assert refused.headers["retry-after"] == "20" and headers(refused)[1] == 0
    assert rig.get("/api/v1/conversations", "reader").status_code == 200  # another key has its own bucket
    assert rig.request("DELETE", f"/api/v1/conversations/{rig.convs['b']}").status_code == 204  # writes: another policy
    rig.clock.advance(19)
    assert rig.get("/api/v1/conversations").status_code == 429
    rig.clock.advance(1)
    assert rig.get("/api/v1/conversations").status_code == 200
    rig.clock.advance(600)
    assert headers(rig.get("/api/v1/conversations"))[1] == 2


def test_tokens_share_their_keys_bucket_and_anonymous_calls_count_per_address(rig: Rig) -> None:
    token = rig.request("POST", "/api/v1/auth/token").json()["accessToken"]
    assert headers(rig.get("/api/v1/conversations", token))[1] == 2
    assert headers(rig.get("/api/v1/conversations"))[1] == 1  # the key's bucket: the token spent from it
    assert headers(rig.get("/api/v1/conversations", None))[3] == "anonymous"
    assert rig.get("/api/v1/conversations", None).status_code == 401
    blocked = rig.get("/api/v1/conversations", "vsnp_live_" + "q" * 40)
    assert blocked.status_code == 429 and "retry-after" in blocked.headers
    assert rig.request("POST", "/api/v1/auth/token").status_code == 200
    assert rig.request("POST", "/api/v1/auth/token").status_code == 429  # auth: 2 per minute per key


def test_headers_on_every_answer_and_off_switch(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    for rig in rig_fixture(request, tmp_path, rate_limits=SMALL):
        for response in (rig.get("/openapi.json", None), rig.get("/api/v1/conversations/conv_nope"),
                         rig.request("POST", "/api/v1/api-keys", json={}), rig.get("/api/v1/nowhere")):
            assert "x-ratelimit-limit" in response.headers and "x-ratelimit-reset" in response.headers, response.status_code
    for rig in rig_fixture(request, tmp_path / "off", rate_limits=RateLimitSettings(enabled=False)):
        response = rig.get("/api/v1/conversations")
        assert response.status_code == 200 and "x-ratelimit-limit" not in response.headers


def test_limiter_unit() -> None:
    now = [1000.0]
    limiter = RateLimiter(RateLimitSettings(policies={"p": RatePolicy(2, 10)}, max_buckets=3), lambda: now[0])
    assert limiter.take("unknown", "k") is None
    first = limiter.take("p", "k")
    assert first is not None and (first.allowed, first.remaining, first.reset_at) == (True, 1, 1005)
    limiter.take("p", "k")
    third = limiter.take("p", "k")
    assert third is not None and not third.allowed and third.retry_after == 5
    for key in ("a", "b", "c", "d"):  # past max_buckets, full buckets are forgotten first
        assert limiter.take("p", key) is not None
    now[0] += 2.5
    half = limiter.take("p", "k")
    assert half is None or half.remaining >= 0
    assert set(DEFAULT_POLICIES) == {"api-read", "api-write", "auth", "recordings", "anonymous"}
