"""In-process ConversationStore (the embedded default): dicts plus per-field id sets for filtering."""

from __future__ import annotations

import copy
import heapq
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.store import models as m
from hub.store.base import ConversationExists, ConversationStore
from hub.store.memory_order import Keep, SortOrders, read_page
from hub.store.timefmt import to_ms, utcnow

_INDEXED = ("agentId", "channel", "status", "direction", "outcome")


@dataclass
class _Tenant:
    records: dict[str, m.Record] = field(default_factory=dict)
    turns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    docs: defaultdict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    index: defaultdict[tuple[str, Any], set[str]] = field(default_factory=lambda: defaultdict(set))
    orders: SortOrders = field(default_factory=SortOrders)


def _index_keys(record: m.Record) -> set[tuple[str, Any]]:
    keys = {(name, record[name]) for name in _INDEXED}
    keys.update(("tag", tag) for tag in record["tags"])
    return keys


def _pick_is_cheaper(candidates: int, span: int, dated: bool, needed: int) -> bool:
    """Scoring every candidate (about 10 steps each) against walking the order: the whole span when a date range
    leaves the total unknown, else about `needed` x span / candidates steps (the walk stops at the page end)."""
    walk = span if dated else needed * span / max(1, candidates)
    return candidates * 10 < walk


class MemoryConversationStore(ConversationStore):
    def __init__(self, now: Callable[[], datetime] = utcnow) -> None:
        super().__init__(now)
        self._tenants: defaultdict[str, _Tenant] = defaultdict(_Tenant)
        self._owner: dict[str, str] = {}

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
        return copy.deepcopy(super()._render(record))

    async def _insert(self, record: m.Record) -> None:
        conv_id, tenant_id = record["id"], record["tenantId"]
        if conv_id in self._owner:
            raise ConversationExists(conv_id)
        record = copy.deepcopy(record)
        tenant = self._tenants[tenant_id]
        tenant.records[conv_id] = record
        tenant.turns[conv_id] = []
        self._owner[conv_id] = tenant_id
        self._reindex(tenant, set(), record)
        tenant.orders.add(conv_id, record["startedAtMs"], record["endedAtMs"])

    async def _load(self, tenant_id: str, conversation_id: str) -> m.Record | None:
        return self._record(tenant_id, conversation_id)

    async def _mutate(self, tenant_id: str, conversation_id: str, change: Callable[[m.Record], None]) -> m.Record | None:
        record = self._record(tenant_id, conversation_id)
        if record is None:
            return None
        updated = copy.deepcopy(record)
        change(updated)  # may raise ValueError, leaving the record untouched
        old, old_times = _index_keys(record), (record["startedAtMs"], record["endedAtMs"])
        record.clear()
        record.update(updated)
        tenant = self._tenants[tenant_id]
        self._reindex(tenant, old, record)
        if old_times != (record["startedAtMs"], record["endedAtMs"]):
            tenant.orders.remove(conversation_id, *old_times)
            tenant.orders.add(conversation_id, record["startedAtMs"], record["endedAtMs"])
        return record

    async def add_turn(self, tenant_id: str, conversation_id: str, turn: dict[str, Any]) -> None:
        stored = m.stored_turn(turn)
        if self._record(tenant_id, conversation_id) is not None:
            tenant = self._tenants[tenant_id]
            tenant.turns[conversation_id] = m.merge_turn(tenant.turns[conversation_id], stored)

    async def _turns(self, tenant_id: str, conversation_id: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self._tenants[tenant_id].turns[conversation_id])

    async def _load_doc(self, tenant_id: str, conversation_id: str, name: str) -> dict[str, Any] | None:
        doc = self._tenants[tenant_id].docs[name].get(conversation_id)
        return None if doc is None else copy.deepcopy(doc)

    async def _store_doc(
        self, tenant_id: str, conversation_id: str, name: str, doc: dict[str, Any], change: Callable[[m.Record], None]
    ) -> None:
        if await self._mutate(tenant_id, conversation_id, change) is not None:
            self._tenants[tenant_id].docs[name][conversation_id] = copy.deepcopy(doc)

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
        tenant.orders.remove(conversation_id, record["startedAtMs"], record["endedAtMs"])
        tenant.records.pop(conversation_id, None)
        tenant.turns.pop(conversation_id, None)
        for docs in tenant.docs.values():
            docs.pop(conversation_id, None)
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
        candidates = set.intersection(*sorted((tenant.index.get(k, set()) for k in keys), key=len)) if keys else None
        if filters.min_duration is not None and candidates is not None:
            candidates &= tenant.orders.lasting(filters.min_duration * 1000, now_ms)
        from_ms = None if filters.date_from is None else to_ms(filters.date_from)
        until_ms = None if filters.date_to is None else to_ms(filters.date_to)
        orders = tenant.orders
        lo, hi = orders.start_range(from_ms, until_ms) if sort_by == "startedAt" else (0, len(orders))
        desc = sort_order == "desc"
        dated = from_ms is not None or until_ms is not None
        if candidates is not None and _pick_is_cheaper(len(candidates), hi - lo, dated, offset + page_size):
            ids, total = self._pick(tenant, candidates, from_ms, until_ms, offset, page_size, sort_by, desc, now_ms)
        else:
            ids, total = self._walk(tenant, candidates, filters, (from_ms, until_ms), (lo, hi), offset, page_size,
                                    sort_by, desc, now_ms)
        return [self._render(tenant.records[i]) for i in ids], total

    @staticmethod
    def _pick(tenant: _Tenant, candidates: set[str], from_ms: int | None, until_ms: int | None, offset: int, size: int,
              sort_by: str, desc: bool, now_ms: int) -> tuple[list[str], int]:
        """Few candidates (set filters and minDuration already applied) and a date range: check each one's start,
        score it and take the page with a heap."""
        low, high = -math.inf if from_ms is None else from_ms, math.inf if until_ms is None else until_ms
        records = tenant.records
        found = [(m.sort_score(r, sort_by, now_ms), cid) for cid in candidates
                 if low <= (r := records[cid])["startedAtMs"] <= high]
        pick = heapq.nlargest if desc else heapq.nsmallest
        return [conv_id for _, conv_id in pick(offset + size, found)[offset:]], len(found)

    @staticmethod
    def _walk(tenant: _Tenant, candidates: set[str] | None, f: m.ConversationFilter, dates: tuple[int | None, int | None],
              span: tuple[int, int], offset: int, size: int, sort_by: str, desc: bool,
              now_ms: int) -> tuple[list[str], int]:
        """Walk the sort order (within `span` of the startedAt order) and keep what the filters accept
        (`candidates`, when given, holds minDuration)."""
        orders, records = tenant.orders, tenant.records
        (from_ms, until_ms), (lo, hi) = dates, span
        checks: list[Keep] = []
        if candidates is not None:
            checks.append(lambda cid, _score: cid in candidates)
        if sort_by != "startedAt" and (from_ms is not None or until_ms is not None):
            low, high = -math.inf if from_ms is None else from_ms, math.inf if until_ms is None else until_ms
            checks.append(lambda cid, _score: low <= records[cid]["startedAtMs"] <= high)
        whole = hi - lo == len(orders)
        known: int | None = None
        if candidates is None and f.min_duration is not None:
            least = f.min_duration * 1000
            if sort_by == "durationSeconds":
                checks.append(lambda _cid, score: score >= least)
            else:
                checks.append(lambda cid, _score: orders.lasts(cid, least, now_ms))
            if len(checks) == 1 and whole:
                known = orders.count_lasting(least, now_ms)
        elif not checks:
            known = hi - lo
        elif len(checks) == 1 and candidates is not None and whole:
            known = len(candidates)
        keep: Keep | None = None
        if len(checks) == 1:
            keep = checks[0]
        elif checks:
            keep = lambda cid, score: all(check(cid, score) for check in checks)  # noqa: E731
        return read_page(orders.walk(sort_by, desc, now_ms, lo, hi), keep, offset, size, known)
