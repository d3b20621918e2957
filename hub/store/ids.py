"""Prefixed ULID-style ids: 10 Crockford base32 chars of milliseconds, then 16 random ones."""

from __future__ import annotations

import secrets
import time

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    head = "".join(CROCKFORD[(ms >> (5 * i)) & 31] for i in range(9, -1, -1))
    tail = "".join(secrets.choice(CROCKFORD) for _ in range(16))
    return head + tail


def new_id(prefix: str, now_ms: int | None = None) -> str:
    return f"{prefix}_{ulid(now_ms)}"
