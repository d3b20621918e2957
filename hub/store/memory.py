"""In-process ConversationStore (the embedded default): dicts plus per-field id sets for filtering."""

from __future__ import annotations

import bisect
import copy
import heapq
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.store import models as m
from hub.store.base import ConversationExists
from hub.store.ids import new_id
from hub.store.timefmt import to_ms, utcnow

_INDEXED = ("agentId", "channel", "status", "direction", "outcome")


@dataclass
class _Tenant:
    records: dict[str, m.Record] = field(default_factory=dict)
    turns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    costs: dict[str, dict[str, Any]] = field(default_factory=dict)
    analysis: dict[str, dict[str, Any]] = field(default_factory=dict)
    index: defaultdict[tuple[str, Any], set[str]] = field(default_factory=lambda: defaultdict(set))
    by_start: list[tuple[int, str]] = field(default_factory=list)


def _index_keys(record: m.Record) -> set[tuple[str, Any]]:
    keys = {(name, record[name]) for name in _INDEXED}
    keys.update(("tag", tag) for tag in record["tags"])
    return keys


class MemoryConversationStore:
    def __init__(self, now: Callable[[], datetime] = utcnow) -> None:
        self._now = now
        self._tenants: defaultdict[str, _Tenant] = defaultdict(_Tenant)
        self._owner: dict[str, str] = {}

    def _now_ms(self) -> int:
        return to_ms(self._now())

    def _record(self, tenant_id: str, conversation_id: str) -> m.Record | None:
        tenant = self._tenants.get(tenant_id)
        return None if tenant is None else tenant.records.get(conversation_id)

    def _reindex(self, tenant: _Tenant, old: set[tuple[str, Any]], record: m.Record) -> None:
        new = _index_keys(record)
        for key in old - new:
            tenant.index[key].discard(record["id"])
            if not tenant.index[key]:
                del tenant.index[key]
        for key in new - old:
            tenant.index[key].add(record["id"])

    def _render(self, record: m.Record) -> dict[str, Any]:
        return copy.deepcopy(m.render_conversation(record, self._now_ms()))

    async def create_conversation(
        self,
        tenant_id: str,
        *,
        agent_id: str,
        channel: str = "webrtc",
        direction: str = "inbound",
        metadata: dict[str, Any] | None = None,
        caller: dict[str, Any] | None = None,
        conversation_id: str | None = None,
        started_at: datetime | None = None,
    ) -> dict[str, Any]:
        started = started_at or self._now()
        conv_id = conversation_id or new_id("conv", to_ms(started))
        if conv_id in self._owner:
            raise ConversationExists(conv_id)
        record = m.new_record(
            tenant_id, conv_id, agent_id=agent_id, channel=channel, direction=direction,
            metadata=copy.deepcopy(metadata), caller=copy.deepcopy(caller), started_at=started,
        )
        tenant = self._tenants[tenant_id]
        tenant.records[conv_id] = record
        tenant.turns[conv_id] = []
        self._owner[conv_id] = tenant_id
        self._reindex(tenant, set(), record)
        bisect.insort(tenant.by_start, (record["startedAtMs"], conv_id))
        return self._render(record)

    async def get_conversation(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        record = self._record(tenant_id, conversation_id)
        return None if record is None else self._render(record)

    def _mutate(self, tenant_id: str, conversation_id: str, change: Callable[[m.Record], None]) -> dict[str, Any] | None:
        record = self._record(tenant_id, conversation_id)
        if record is None:
            return None
        updated = copy.deepcopy(record)
        change(updated)  # may raise ValueError, leaving the record untouched
        old = _index_keys(record)
        record.clear()
        record.update(updated)
        self._reindex(self._tenants[tenant_id], old, record)
        return self._render(record)

    async def update_conversation(self, tenant_id: str, conversation_id: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        now_ms = self._now_ms()
        return self._mutate(tenant_id, conversation_id, lambda r: m.apply_patch(r, copy.deepcopy(patch), now_ms))

    async def add_tags(self, tenant_id: str, conversation_id: str, tags: list[str]) -> dict[str, Any] | None:
        def change(r: m.Record) -> None:
            r["tags"] = m.dedupe(r["tags"] + [str(t) for t in tags])

        return self._mutate(tenant_id, conversation_id, change)

    async def end_conversation(
        self, tenant_id: str, conversation_id: str, *, status: str, reason: str, ended_at: datetime | None = None
    ) -> dict[str, Any] | None:
        if status not in m.ENDED_STATUSES:
            raise ValueError(f"status {status!r} does not end a conversation")
        ended_ms = to_ms(ended_at or self._now())

        def change(r: m.Record) -> None:
            r["status"] = status
            r["endReason"] = reason
            r["endedAtMs"] = max(ended_ms, r["startedAtMs"])

        return self._mutate(tenant_id, conversation_id, change)

    async def add_turn(self, tenant_id: str, conversation_id: str, turn: dict[str, Any]) -> None:
        stored = m.stored_turn(turn)
        if self._record(tenant_id, conversation_id) is not None:
            tenant = self._tenants[tenant_id]
            tenant.turns[conversation_id] = m.merge_turn(tenant.turns[conversation_id], stored)

    async def get_transcript(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        record = self._record(tenant_id, conversation_id)
        if record is None:
            return None
        turns = self._tenants[tenant_id].turns[conversation_id]
        return copy.deepcopy(m.render_transcript(record, turns, self._now_ms()))

    async def get_messages(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        record = self._record(tenant_id, conversation_id)
        if record is None:
            return None
        return copy.deepcopy(m.render_messages(record, self._tenants[tenant_id].turns[conversation_id]))

    async def set_costs(self, tenant_id: str, conversation_id: str, costs: dict[str, Any]) -> None:
        record = self._record(tenant_id, conversation_id)
        if record is not None:
            self._tenants[tenant_id].costs[conversation_id] = copy.deepcopy(costs)
            record["cost"] = m.cost_summary(costs)

    async def get_costs(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        record = self._record(tenant_id, conversation_id)
        if record is None:
            return None
        return copy.deepcopy(m.render_costs(record, self._tenants[tenant_id].costs.get(conversation_id)))

    async def set_analysis(self, tenant_id: str, conversation_id: str, analysis: dict[str, Any]) -> None:
        record = self._record(tenant_id, conversation_id)
        if record is not None:
            self._tenants[tenant_id].analysis[conversation_id] = copy.deepcopy(analysis)
            record["analysis"] = m.analysis_summary(analysis)

    async def get_analysis(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        record = self._record(tenant_id, conversation_id)
        analysis = self._tenants[tenant_id].analysis.get(conversation_id) if record is not None else None
        if record is None or analysis is None:
            return None
        return copy.deepcopy(m.render_analysis(record, analysis))

    async def set_recording(self, tenant_id: str, conversation_id: str, *, path: str, duration_seconds: float) -> None:
        record = self._record(tenant_id, conversation_id)
        if record is not None:
            record["recording"] = {"path": path, "durationSeconds": float(duration_seconds), "createdAtMs": self._now_ms()}

    async def get_recording_info(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        record = self._record(tenant_id, conversation_id)
        if record is None or record["recording"] is None:
            return None
        return dict(record["recording"])

    async def tenant_of(self, conversation_id: str) -> str | None:
        return self._owner.get(conversation_id)

    async def delete_conversation(self, tenant_id: str, conversation_id: str) -> bool:
        record = self._record(tenant_id, conversation_id)
        if record is None:
            return False
        tenant = self._tenants[tenant_id]
        for key in _index_keys(record):
            tenant.index[key].discard(conversation_id)
            if not tenant.index[key]:
                del tenant.index[key]
        pos = bisect.bisect_left(tenant.by_start, (record["startedAtMs"], conversation_id))
        del tenant.by_start[pos]
        for table in (tenant.records, tenant.turns, tenant.costs, tenant.analysis):
            table.pop(conversation_id, None)
        self._owner.pop(conversation_id, None)
        return True

    async def list_conversations(
        self, tenant_id: str, filters: m.ConversationFilter, page: int, page_size: int, sort_by: str, sort_order: str
    ) -> tuple[list[dict[str, Any]], int]:
        if sort_by not in m.SORT_FIELDS or sort_order not in ("asc", "desc") or page < 1 or page_size < 1:
            raise ValueError("bad sort or page")
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            return [], 0
        now_ms = self._now_ms()
        offset = (page - 1) * page_size
        wanted = [("agentId", filters.agent_id), ("channel", filters.channel), ("status", filters.status),
                  ("direction", filters.direction), ("outcome", filters.outcome)]
        keys = [(name, value) for name, value in wanted if value is not None] + [("tag", t) for t in filters.tags]
        if sort_by == "startedAt" and not keys and filters.min_duration is None:
            ids, total = self._page_by_start(tenant, filters, offset, page_size, sort_order == "desc")
        else:
            if keys:
                sets = sorted((tenant.index.get(k, set()) for k in keys), key=len)
                candidates: set[str] | dict[str, m.Record] = set.intersection(*sets)
            else:
                candidates = tenant.records
            found = [(m.sort_score(r, sort_by, now_ms), r["id"]) for r in (tenant.records[c] for c in candidates)
                     if m.matches(r, filters, now_ms)]
            total = len(found)
            pick = heapq.nlargest if sort_order == "desc" else heapq.nsmallest
            ids = [conv_id for _, conv_id in pick(offset + page_size, found)[offset:]]
        return [self._render(tenant.records[i]) for i in ids], total

    def _page_by_start(
        self, tenant: _Tenant, f: m.ConversationFilter, offset: int, size: int, desc: bool
    ) -> tuple[list[str], int]:
        lo = 0 if f.date_from is None else bisect.bisect_left(tenant.by_start, (to_ms(f.date_from), ""))
        hi = len(tenant.by_start) if f.date_to is None else bisect.bisect_right(tenant.by_start, (to_ms(f.date_to), "\uffff"))
        total = max(0, hi - lo)
        if desc:
            window = tenant.by_start[max(lo, hi - offset - size):max(lo, hi - offset)][::-1]
        else:
            window = tenant.by_start[lo + offset:min(hi, lo + offset + size)]
        return [conv_id for _, conv_id in window], total
