"""The caller-session registry shared by hub nodes: which node owns a caller session, and until when it can be resumed.

One record per caller session (`SessionRecord`), an ownership lease per conversation that the owning node renews, and
a due-time index that any node's sweep reads to end the sessions nobody owns or resumes any more (docs/broker.md,
docs/voicehub.md "Sessions across nodes"). `MemorySessionRegistry` (one process) and `RedisSessionRegistry`
(hub/broker/redis_sessions.py) have the same semantics; times are epoch milliseconds (Redis `TIME` on Redis).

A record is `live` while a node owns it or it waits for a resume, `ending` once a node began ending its conversation.
A live record may be taken over (resumed on a node) while its owner's lease holds, while `resumeBeforeMs` is in the
future, or until its due time (the owner's last renewal + lease + grace): past all three, a sweep claims it and ends
the conversation as abandoned.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

LIVE = "live"
ENDING = "ending"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    session_id: str
    tenant_id: str
    conversation_id: str
    agent_id: str
    owner: str = ""
    """Node id of the owner; "" while handed off (waiting for a resume on any node)."""
    resume_before_ms: int = 0
    """RequestReconnectionAsync's deadline (or the drain's), 0 if none."""
    agent_ms: int = -1
    """timestampMs of the last agent frame the owner handed to the caller's connection (-1: none yet)."""
    state: str = LIVE
    due_ms: int = 0
    """When a sweep should look at the session next."""


@dataclass(frozen=True, slots=True)
class Renewal:
    session_id: str
    conversation_id: str
    agent_ms: int


class SessionRegistry(Protocol):
    shared: bool
    """True when other processes see the registry (Redis): sessions can move between nodes."""

    async def register(self, record: SessionRecord, lease_s: float, grace_s: float) -> None: ...

    async def renew(self, owner: str, renewals: list[Renewal], lease_s: float, grace_s: float) -> list[bool]:
        """Extend the owner's lease of each session (re-taken if it lapsed while nobody else took the session);
        False for a session this owner lost (taken over, claimed by a sweep, gone)."""
        ...

    async def update(self, session_id: str, owner: str, *, resume_before_ms: int | None = None,
                     agent_ms: int | None = None) -> bool: ...

    async def release(self, record: SessionRecord, owner: str, resume_before_ms: int, agent_ms: int) -> bool:
        """Hand a session off (drain): no owner, resumable on any node until resume_before_ms (never earlier than
        an already granted deadline), then ended by a sweep."""
        ...

    async def take_over(self, session_id: str, tenant_id: str, owner: str, lease_s: float,
                        grace_s: float) -> SessionRecord | None:
        """Make `owner` the owner of a resumable session of this tenant; the record as it was before (its `owner` is
        the previous owner), or None when the session is unknown, of another tenant, ending or expired."""
        ...

    async def begin_end(self, session_id: str, owner: str) -> bool:
        """The owner is about to end the conversation: True if it still owns the live session (now `ending`)."""
        ...

    async def finish(self, session_id: str, conversation_id: str, owner: str) -> None:
        """The conversation ended: forget the session (its lease too, if `owner` holds it)."""
        ...

    async def due(self, limit: int) -> list[str]:
        """Session ids whose due time has passed (candidates for `claim_expired`)."""
        ...

    async def claim_expired(self, session_id: str, owner: str, lease_s: float) -> SessionRecord | None:
        """If nobody owns the session, no resume deadline remains and its due time passed: mark it `ending`, owned
        by `owner`, and return it (the caller ends the conversation, then calls `finish`). Otherwise None (and the
        due time moves to when to look again)."""
        ...

    async def get(self, session_id: str) -> SessionRecord | None: ...


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class MemorySessionRegistry:
    """The registry for one process (the in-memory broker): same rules, wall-clock milliseconds."""

    shared = False

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.records: dict[str, SessionRecord] = {}
        self.leases: dict[str, tuple[str, int]] = {}  # conversation id -> (owner, expiry ms)

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def _holder(self, conversation_id: str) -> str | None:
        held = self.leases.get(conversation_id)
        if held is None or held[1] <= self._now():
            self.leases.pop(conversation_id, None)
            return None
        return held[0]

    def _own(self, record: SessionRecord, owner: str, lease_s: float, grace_s: float) -> SessionRecord:
        now = self._now()
        self.leases[record.conversation_id] = (owner, now + _ms(lease_s))
        updated = replace(record, owner=owner, due_ms=now + _ms(lease_s) + _ms(grace_s))
        self.records[record.session_id] = updated
        return updated

    async def register(self, record: SessionRecord, lease_s: float, grace_s: float) -> None:
        self._own(replace(record, state=LIVE), record.owner, lease_s, grace_s)

    async def renew(self, owner: str, renewals: list[Renewal], lease_s: float, grace_s: float) -> list[bool]:
        results = []
        for renewal in renewals:
            record = self.records.get(renewal.session_id)
            ok = (record is not None and record.owner == owner and record.state == LIVE
                  and self._holder(record.conversation_id) in (owner, None))
            if ok and record is not None:
                self._own(replace(record, agent_ms=renewal.agent_ms), owner, lease_s, grace_s)
            results.append(ok)
        return results

    async def update(self, session_id: str, owner: str, *, resume_before_ms: int | None = None,
                     agent_ms: int | None = None) -> bool:
        record = self.records.get(session_id)
        if record is None or record.owner != owner or record.state != LIVE:
            return False
        if resume_before_ms is not None:
            record = replace(record, resume_before_ms=resume_before_ms)
        if agent_ms is not None:
            record = replace(record, agent_ms=agent_ms)
        self.records[session_id] = record
        return True

    async def release(self, record: SessionRecord, owner: str, resume_before_ms: int, agent_ms: int) -> bool:
        current = self.records.get(record.session_id)
        if current is None or current.owner != owner or current.state != LIVE:
            return False
        deadline = max(current.resume_before_ms, resume_before_ms)
        self.records[record.session_id] = replace(current, owner="", resume_before_ms=deadline, agent_ms=agent_ms,
                                                  due_ms=deadline)
        if self._holder(current.conversation_id) == owner:
            del self.leases[current.conversation_id]
        return True

    async def take_over(self, session_id: str, tenant_id: str, owner: str, lease_s: float,
                        grace_s: float) -> SessionRecord | None:
        record = self.records.get(session_id)
        if record is None or record.tenant_id != tenant_id or record.state != LIVE:
            return None
        now = self._now()
        if self._holder(record.conversation_id) is None and record.resume_before_ms <= now and record.due_ms <= now:
            return None
        self._own(replace(record, resume_before_ms=0), owner, lease_s, grace_s)
        return record

    async def begin_end(self, session_id: str, owner: str) -> bool:
        record = self.records.get(session_id)
        if record is None or record.owner != owner or record.state != LIVE:
            return False
        self.records[session_id] = replace(record, state=ENDING)
        return True

    async def finish(self, session_id: str, conversation_id: str, owner: str) -> None:
        self.records.pop(session_id, None)
        if self._holder(conversation_id) == owner:
            del self.leases[conversation_id]

    async def due(self, limit: int) -> list[str]:
        now = self._now()
        due = sorted((r.due_ms, r.session_id) for r in self.records.values() if r.due_ms <= now)
        return [session_id for _, session_id in due[:limit]]

    async def claim_expired(self, session_id: str, owner: str, lease_s: float) -> SessionRecord | None:
        record = self.records.get(session_id)
        if record is None:
            return None
        now = self._now()
        held = self.leases.get(record.conversation_id)
        if self._holder(record.conversation_id) is not None and held is not None:
            self.records[session_id] = replace(record, due_ms=held[1])
            return None
        if record.resume_before_ms > now or record.due_ms > now:
            self.records[session_id] = replace(record, due_ms=max(record.resume_before_ms, record.due_ms))
            return None
        claimed = replace(record, owner=owner, state=ENDING, due_ms=now + _ms(lease_s))
        self.records[session_id] = claimed
        self.leases[record.conversation_id] = (owner, now + _ms(lease_s))
        return record

    async def get(self, session_id: str) -> SessionRecord | None:
        return self.records.get(session_id)
