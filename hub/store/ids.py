"""Prefixed ULID-style ids: 10 Crockford base32 chars of milliseconds, then 16 random ones.

Ids made by one process sort in the order they were made, even within one millisecond: the random part
of the previous id is incremented then (the ULID "monotonic" rule), so lists ordered by
(createdAt, id) keep creation order."""

from __future__ import annotations

import secrets
import threading
import time

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TAIL_BITS = 80

_lock = threading.Lock()
_last_ms = -1
_last_tail = 0


def _encode(value: int, chars: int) -> str:
    return "".join(CROCKFORD[(value >> (5 * i)) & 31] for i in range(chars - 1, -1, -1))


def ulid(now_ms: int | None = None) -> str:
    global _last_ms, _last_tail
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _lock:
        if ms == _last_ms and _last_tail + 1 < (1 << _TAIL_BITS):
            tail = _last_tail + 1
        else:
            tail = secrets.randbits(_TAIL_BITS - 1)  # room to count up within the millisecond
        _last_ms, _last_tail = ms, tail
    return _encode(ms, 10) + _encode(tail, 16)


def new_id(prefix: str, now_ms: int | None = None) -> str:
    return f"{prefix}_{ulid(now_ms)}"
