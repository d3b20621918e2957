"""Token-bucket rate limits per credential (or per client address when there is none), in process memory.

Each policy is a bucket of `limit` requests refilled evenly over `window_seconds`. Buckets live in this
process only: with several hub nodes each node counts on its own (documented in docs/rest-api.md).
Every answer carries X-RateLimit-Limit, -Remaining, -Reset (Unix seconds when the bucket is full again)
and -Policy; a refusal is a 429 problem with Retry-After.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from hub.rest.problems import Problem


@dataclass(frozen=True)
class RatePolicy:
    limit: int
    window_seconds: float = 60.0

    @property
    def rate(self) -> float:
        return self.limit / self.window_seconds


DEFAULT_POLICIES: dict[str, RatePolicy] = {
    "api-read": RatePolicy(300),  # GET endpoints, per credential
    "api-write": RatePolicy(60),  # POST, PUT, DELETE, per credential
    "auth": RatePolicy(30),  # POST /api/v1/auth/token, per API key
    "recordings": RatePolicy(600),  # signed recording downloads (players send many range requests), per address
    "anonymous": RatePolicy(120),  # requests without a valid credential and /openapi.json, per address
}


@dataclass(frozen=True)
class RateLimitSettings:
    enabled: bool = True
    policies: Mapping[str, RatePolicy] = field(default_factory=lambda: dict(DEFAULT_POLICIES))
    max_buckets: int = 100_000  # past this, full buckets are forgotten (they hold no information)


@dataclass(frozen=True)
class Decision:
    policy: str
    limit: int
    remaining: int
    reset_at: int
    retry_after: int | None  # set when refused

    @property
    def allowed(self) -> bool:
        return self.retry_after is None

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(self.reset_at), "X-RateLimit-Policy": self.policy}

    def refusal(self) -> Problem:
        headers = {**self.headers(), "Retry-After": str(self.retry_after)}
        return Problem(429, f"You have exceeded the {self.policy} rate limit of {self.limit} requests; retry in "
                            f"{self.retry_after} s.", headers=headers)


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, settings: RateLimitSettings, now: Callable[[], float]) -> None:
        self.settings = settings
        self._now = now
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def take(self, policy_name: str, key: str) -> Decision | None:
        """Spend one request of `key` under the policy; None when rate limiting is off."""
        policy = self.settings.policies.get(policy_name)
        if not self.settings.enabled or policy is None:
            return None
        now = self._now()
        bucket = self._buckets.get((policy_name, key))
        if bucket is None:
            if len(self._buckets) >= self.settings.max_buckets:
                self._forget_full(now)
            bucket = self._buckets[(policy_name, key)] = _Bucket(float(policy.limit), now)
        bucket.tokens = min(float(policy.limit), bucket.tokens + max(0.0, now - bucket.updated) * policy.rate)
        bucket.updated = now
        retry_after = None
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
        else:
            retry_after = max(1, math.ceil((1.0 - bucket.tokens) / policy.rate))
        reset_at = math.ceil(now + (policy.limit - bucket.tokens) / policy.rate)
        return Decision(policy_name, policy.limit, math.floor(bucket.tokens), reset_at, retry_after)

    def _forget_full(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            policy = self.settings.policies.get(key[0])
            if policy is None or bucket.tokens + (now - bucket.updated) * policy.rate >= policy.limit:
                del self._buckets[key]
        if len(self._buckets) >= self.settings.max_buckets:  # all busy: drop the oldest half
            for key, _ in sorted(self._buckets.items(), key=lambda kv: kv[1].updated)[: len(self._buckets) // 2]:
                del self._buckets[key]
