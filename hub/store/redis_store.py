"""ConversationStore on Redis: one JSON record per conversation plus per-tenant indices.

Keys (prefix `voicehub` by default), all under `<prefix>:store:`:
  owner:{id}                          string, the tenant of a conversation (ids are unique across tenants)
  t:{tenant}:conv:{id}                JSON record; `:turns` hash turnId -> JSON; `:costs`, `:analysis` JSON
  t:{tenant}:idx:startedAt|endedAt    sorted sets by epoch ms (endedAt is +inf while in progress)
  t:{tenant}:idx:duration             sorted set of ended conversations by duration in seconds
  t:{tenant}:idx:open                 sorted set of conversations in progress by -startedAtMs (longest last)
  t:{tenant}:with:{field}:{value}     per value of agentId, channel, status, direction, outcome and per tag:
                                      a sorted set of the conversations having it, by startedAt epoch ms
  t:{tenant}:bits:{field}:{value}     the same selections as bitmaps over slots (ANDed and counted at once)
  t:{tenant}:bits:day:{n}             bitmap of the conversations started on UTC day n (epoch ms // 86400000)
  t:{tenant}:bits:dur:{bound}, :open  bitmaps of the ended conversations by duration bucket (DURATION_LADDER)
                                      and of the conversations in progress
  t:{tenant}:slot:next, :slot:ids     a conversation's slot (a number per tenant, kept in the record as
                                      `slot`, never reused) and the hash slot -> id
The indices change in the same MULTI as the record. Listing is one Lua script (hub/store/redis_listing.py)
that walks the sort index and stops at the end of the page.

Data of the earlier layout (plain sets idx:{field}:{value}, records without `slot`) is indexed again the
first time a tenant is listed (`upgrade_tenant`), then its plain sets are dropped.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from hub.store import models as m
from hub.store.base import ConversationExists, ConversationStore
from hub.store.redis_batch import IndexWriter, NewRecordsBatch
from hub.store.redis_listing import DAY_MS, PageScript, duration_bucket, filter_values, script_args
from hub.store.timefmt import utcnow

log = logging.getLogger("hub.store")
_INDEXED = ("agentId", "channel", "status", "direction", "outcome")
_ORDERS = ("startedAt", "endedAt", "duration", "open")


class RedisConversationStore(ConversationStore):
    def __init__(self, redis: Redis, *, prefix: str = "voicehub", now: Callable[[], datetime] = utcnow) -> None:
        super().__init__(now)
        self._redis = redis
        self._p = f"{prefix}:store"
        self._list_page = PageScript(redis)
        self._current: set[str] = set()  # tenants known to have no data of the earlier layout

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "voicehub", now: Callable[[], datetime] = utcnow) -> RedisConversationStore:
        return cls(Redis.from_url(url), prefix=prefix, now=now)

    async def aclose(self) -> None:
        await self._redis.aclose()

    # keys
    def _conv(self, tenant_id: str, conversation_id: str) -> str:
        return f"{self._p}:t:{tenant_id}:conv:{conversation_id}"

    def _idx(self, tenant_id: str, name: str) -> str:
        return f"{self._p}:t:{tenant_id}:idx:{name}"

    def _with(self, tenant_id: str, name: str) -> str:
        return f"{self._p}:t:{tenant_id}:with:{name}"

    def _bits(self, tenant_id: str, name: str) -> str:
        return f"{self._p}:t:{tenant_id}:bits:{name}"

    def _slot(self, tenant_id: str, name: str) -> str:
        return f"{self._p}:t:{tenant_id}:slot:{name}"

    @staticmethod
    def _set_names(record: m.Record) -> set[str]:
        names = {f"{name}:{record[name]}" for name in _INDEXED if record[name] is not None}
        names.update(f"tag:{tag}" for tag in record["tags"])
        return names

    @staticmethod
    def _lifecycle_bits(record: m.Record | None) -> set[str]:
        if record is None:
            return set()
        if record["endedAtMs"] is None:
            return {"open"}
        return {f"dur:{duration_bucket(m.duration_seconds(record, record['endedAtMs']))}"}

    def _write_indices(self, pipe: IndexWriter, old: m.Record | None, new: m.Record | None) -> None:
        record = new or old
        assert record is not None
        tenant, conv_id, slot = record["tenantId"], record["id"], record.get("slot")
        old_names = self._set_names(old) if old else set()
        new_names = self._set_names(new) if new else set()
        for name in old_names - new_names:
            pipe.zrem(self._with(tenant, name), conv_id)
            if slot is not None:
                pipe.setbit(self._bits(tenant, name), slot, 0)
        for name in new_names - old_names:
            pipe.zadd(self._with(tenant, name), {conv_id: record["startedAtMs"]})  # startedAtMs never changes
            if slot is not None:
                pipe.setbit(self._bits(tenant, name), slot, 1)
        if slot is not None:
            old_bits, new_bits = self._lifecycle_bits(old), self._lifecycle_bits(new)
            for name in old_bits - new_bits:
                pipe.setbit(self._bits(tenant, name), slot, 0)
            for name in new_bits - old_bits:
                pipe.setbit(self._bits(tenant, name), slot, 1)
        day = self._bits(tenant, f"day:{record['startedAtMs'] // DAY_MS}")  # startedAtMs never changes
        if old is None and slot is not None:
            pipe.hset(self._slot(tenant, "ids"), str(slot), conv_id)
            pipe.setbit(day, slot, 1)
        if new is None:
            if slot is not None:
                pipe.hdel(self._slot(tenant, "ids"), str(slot))
                pipe.setbit(day, slot, 0)
            for name in _ORDERS:
                pipe.zrem(self._idx(tenant, name), conv_id)
            return
        started, ended = new["startedAtMs"], new["endedAtMs"]
        if old is not None and (old["startedAtMs"], old["endedAtMs"]) == (started, ended):
            return
        pipe.zadd(self._idx(tenant, "startedAt"), {conv_id: started})
        pipe.zadd(self._idx(tenant, "endedAt"), {conv_id: float("inf") if ended is None else ended})
        if ended is None:  # in progress (reopened included): ordered live by how long it has lasted
            if old is not None:
                pipe.zrem(self._idx(tenant, "duration"), conv_id)
            pipe.zadd(self._idx(tenant, "open"), {conv_id: -started})
        else:
            if old is not None:
                pipe.zrem(self._idx(tenant, "open"), conv_id)
            pipe.zadd(self._idx(tenant, "duration"), {conv_id: m.duration_seconds(new, ended)})

    async def _load(self, tenant_id: str, conversation_id: str) -> m.Record | None:
        raw = await self._redis.get(self._conv(tenant_id, conversation_id))
        return None if raw is None else _loads(raw)

    async def _mutate(
        self,
        tenant_id: str,
        conversation_id: str,
        change: Callable[[m.Record], None] | None,
        extra: Callable[[Pipeline, m.Record], object] | None = None,
    ) -> m.Record | None:
        """WATCH the record, apply `change`, write it with its indices and whatever `extra` queues, in one MULTI."""
        key = self._conv(tenant_id, conversation_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        await pipe.reset()  # type: ignore[no-untyped-call]
                        return None
                    old = _loads(raw)
                    record = _loads(raw)
                    if change is not None:
                        change(record)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    if change is not None:
                        pipe.set(key, orjson.dumps(record))
                        self._write_indices(pipe, old, record)
                    if extra is not None:
                        extra(pipe, old)
                    await pipe.execute()
                    return dict(record)
                except WatchError:
                    continue

    async def _insert(self, record: m.Record) -> None:
        tenant_id, conv_id = record["tenantId"], record["id"]
        if not await self._redis.set(f"{self._p}:owner:{conv_id}", tenant_id, nx=True):
            raise ConversationExists(conv_id)
        record = {**record, "slot": await self._redis.incr(self._slot(tenant_id, "next")) - 1}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._conv(tenant_id, conv_id), orjson.dumps(record))
            self._write_indices(pipe, None, record)
            await pipe.execute()

    async def insert_records(self, records: Iterable[m.Record], *, batch: int = 500) -> None:
        """Store whole records (an import, a benchmark) with `_insert`'s keys and indices, `batch` per MULTI
        (the writes of `_write_indices` gathered per key: redis_batch.NewRecordsBatch).

        A record whose id is taken is not written; ConversationExists names the first one, after the rest of
        its batch is stored (earlier batches stay stored too)."""
        pending = list(records)
        taken: list[str] = []
        for at in range(0, len(pending), batch):
            part = pending[at:at + batch]
            async with self._redis.pipeline(transaction=False) as pipe:
                for record in part:
                    pipe.set(f"{self._p}:owner:{record['id']}", record["tenantId"], nx=True)
                claimed = await pipe.execute()
            tenants = Counter(record["tenantId"] for record, ok in zip(part, claimed, strict=True) if ok)
            async with self._redis.pipeline(transaction=False) as pipe:
                for tenant, count in tenants.items():
                    pipe.incrby(self._slot(tenant, "next"), count)
                next_slot = {tenant: top - tenants[tenant] for tenant, top in zip(tenants, await pipe.execute(), strict=True)}
            writes = NewRecordsBatch()
            for record, ok in zip(part, claimed, strict=True):
                if not ok:
                    taken.append(record["id"])
                    continue
                stored = {**record, "slot": next_slot[record["tenantId"]]}
                next_slot[record["tenantId"]] += 1
                writes.set(self._conv(record["tenantId"], record["id"]), orjson.dumps(stored))
                self._write_indices(writes, None, stored)
            async with self._redis.pipeline(transaction=True) as pipe:
                writes.flush(pipe)
                await pipe.execute()
        if taken:
            raise ConversationExists(taken[0])

    async def add_turn(self, tenant_id: str, conversation_id: str, turn: dict[str, Any]) -> None:
        stored = m.stored_turn(turn)
        key = self._conv(tenant_id, conversation_id) + ":turns"
        await self._mutate(tenant_id, conversation_id, None, lambda p, _: p.hset(key, stored["turnId"], orjson.dumps(stored)))

    async def _turns(self, tenant_id: str, conversation_id: str) -> list[dict[str, Any]]:
        raw = await self._redis.hvals(self._conv(tenant_id, conversation_id) + ":turns")
        return sorted((_loads(v) for v in raw), key=lambda t: (t["startTime"], t["turnId"]))

    async def _load_doc(self, tenant_id: str, conversation_id: str, name: str) -> dict[str, Any] | None:
        raw = await self._redis.get(f"{self._conv(tenant_id, conversation_id)}:{name}")
        return None if raw is None else dict(_loads(raw))

    async def _store_doc(
        self, tenant_id: str, conversation_id: str, name: str, doc: dict[str, Any], change: Callable[[m.Record], None]
    ) -> None:
        key = f"{self._conv(tenant_id, conversation_id)}:{name}"
        await self._mutate(tenant_id, conversation_id, change, lambda p, _: p.set(key, orjson.dumps(doc)))

    async def tenant_of(self, conversation_id: str) -> str | None:
        raw = await self._redis.get(f"{self._p}:owner:{conversation_id}")
        return None if raw is None else _text(raw)

    async def delete_conversation(self, tenant_id: str, conversation_id: str) -> bool:
        base = self._conv(tenant_id, conversation_id)

        def extra(pipe: Pipeline, old: m.Record) -> None:
            pipe.delete(base, base + ":turns", base + ":costs", base + ":analysis", f"{self._p}:owner:{conversation_id}")
            self._write_indices(pipe, old, None)

        return await self._mutate(tenant_id, conversation_id, None, extra) is not None

    async def list_conversations(
        self, tenant_id: str, filters: m.ConversationFilter, page: int, page_size: int, sort_by: str, sort_order: str
    ) -> tuple[list[dict[str, Any]], int]:
        if sort_by not in m.SORT_FIELDS or sort_order not in ("asc", "desc") or page < 1 or page_size < 1:
            raise ValueError("bad sort or page")
        if tenant_id not in self._current:
            if await self._redis.exists(*self._legacy_status_sets(tenant_id)):
                await self.upgrade_tenant(tenant_id)
            self._current.add(tenant_id)
        ids, total = await self._page_ids(tenant_id, filters, (page - 1) * page_size, page_size, sort_by, sort_order == "desc")
        return await self._render_ids(tenant_id, ids), total

    async def _page_ids(
        self, tenant_id: str, filters: m.ConversationFilter, offset: int, size: int, sort_by: str, desc: bool
    ) -> tuple[list[str], int]:
        names = [f"{name}:{value}" for name, value in filter_values(filters)]
        keys = [self._idx(tenant_id, name) for name in _ORDERS] + [self._bits(tenant_id, "tmp"), self._slot(tenant_id, "ids")]
        keys += [self._with(tenant_id, name) for name in names] + [self._bits(tenant_id, name) for name in names]
        args = script_args(filters, offset, size, sort_by, desc, self._now_ms(), self._bits(tenant_id, ""))
        return await self._list_page(keys, args)

    def _legacy_status_sets(self, tenant_id: str) -> list[str]:
        return [self._idx(tenant_id, f"status:{status}") for status in sorted(m.STATUSES)]

    async def upgrade_tenant(self, tenant_id: str) -> int:
        """Index a tenant's conversations stored by the earlier layout; answers how many were indexed.

        Every such conversation is in one of the earlier `idx:status:*` sets (new writes never touch them):
        each gets a slot and all of today's indices, in one MULTI watched on its record (safe alongside
        writers and other nodes doing the same). The earlier plain sets are dropped after."""
        ids = await self._redis.sunion(self._legacy_status_sets(tenant_id))
        log.warning("indexing %d conversations of tenant %s stored by the earlier Redis layout", len(ids), tenant_id)
        upgraded = 0
        for raw in ids:
            upgraded += await self._adopt(tenant_id, _text(raw))
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self._idx(tenant_id, "")) + "*"
        async for key in self._redis.scan_iter(match=pattern, count=1000):
            if _text(await self._redis.type(key)) == "set":
                await self._redis.unlink(key)
        return upgraded

    async def _adopt(self, tenant_id: str, conversation_id: str) -> bool:
        key = self._conv(tenant_id, conversation_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    record = None if raw is None else _loads(raw)
                    if record is None or record.get("slot") is not None:
                        await pipe.reset()  # type: ignore[no-untyped-call]
                        return False
                    record["slot"] = await self._redis.incr(self._slot(tenant_id, "next")) - 1
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.set(key, orjson.dumps(record))
                    self._write_indices(pipe, None, record)
                    await pipe.execute()
                    return True
                except WatchError:
                    continue

    async def _render_ids(self, tenant_id: str, ids: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        raws = await self._redis.mget([self._conv(tenant_id, i) for i in ids])
        return [self._render(_loads(raw)) for raw in raws if raw is not None]


def _loads(raw: bytes | str) -> Any:
    return orjson.loads(raw)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
