"""ConversationStore on Redis: one JSON record per conversation plus per-tenant indices.

Keys (prefix `voicehub` by default), all under `<prefix>:store:`:
  owner:{id}                          string, the tenant of a conversation (ids are unique across tenants)
  t:{tenant}:conv:{id}                JSON record; `:turns` hash turnId -> JSON; `:costs`, `:analysis` JSON
  t:{tenant}:idx:startedAt|endedAt    sorted sets by epoch ms (endedAt is +inf while in progress)
  t:{tenant}:idx:duration             sorted set of ended conversations by duration in seconds
  t:{tenant}:idx:{field}:{value}      sets for agentId, channel, status, direction, outcome, tag
Listing intersects those sets into a temporary sorted set (ZINTERSTORE with weight 0 for the filter sets),
trims the date range by score and reads one page, so a page costs O(matches), not a scan of the tenant.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from hub.store import models as m
from hub.store.base import ConversationExists, ConversationStore
from hub.store.timefmt import to_ms, utcnow

_INDEXED = ("agentId", "channel", "status", "direction", "outcome")
_TMP_TTL = 30


class RedisConversationStore(ConversationStore):
    def __init__(self, redis: Redis, *, prefix: str = "voicehub", now: Callable[[], datetime] = utcnow) -> None:
        super().__init__(now)
        self._redis = redis
        self._p = f"{prefix}:store"

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

    def _set_keys(self, record: m.Record) -> set[str]:
        tenant = record["tenantId"]
        keys = {self._idx(tenant, f"{name}:{record[name]}") for name in _INDEXED if record[name] is not None}
        keys.update(self._idx(tenant, f"tag:{tag}") for tag in record["tags"])
        return keys

    def _write_indices(self, pipe: Pipeline, old: m.Record | None, new: m.Record | None) -> None:
        record = new or old
        assert record is not None
        tenant, conv_id = record["tenantId"], record["id"]
        old_keys = self._set_keys(old) if old else set()
        new_keys = self._set_keys(new) if new else set()
        for key in old_keys - new_keys:
            pipe.srem(key, conv_id)
        for key in new_keys - old_keys:
            pipe.sadd(key, conv_id)
        zsets = ("startedAt", "endedAt", "duration")
        if new is None:
            for name in zsets:
                pipe.zrem(self._idx(tenant, name), conv_id)
            return
        ended = new["endedAtMs"]
        pipe.zadd(self._idx(tenant, "startedAt"), {conv_id: new["startedAtMs"]})
        pipe.zadd(self._idx(tenant, "endedAt"), {conv_id: float("inf") if ended is None else ended})
        if ended is None:
            pipe.zrem(self._idx(tenant, "duration"), conv_id)
        else:
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
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._conv(tenant_id, conv_id), orjson.dumps(record))
            self._write_indices(pipe, None, record)
            await pipe.execute()

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
        now_ms = self._now_ms()

        def idx(name: str) -> str:
            return self._idx(tenant_id, name)

        sets = [idx(f"{name}:{value}") for name, value in (
            ("agentId", filters.agent_id), ("channel", filters.channel), ("status", filters.status),
            ("direction", filters.direction), ("outcome", filters.outcome)) if value is not None]
        sets += [idx(f"tag:{t}") for t in filters.tags]
        start = (page - 1) * page_size
        if not sets and filters.min_duration is None and sort_by == "startedAt":
            ids, total = await self._page_by_start(idx("startedAt"), filters, start, page_size, sort_order == "desc")
            return await self._render_ids(tenant_id, ids), total
        tmp = f"{self._p}:tmp:{secrets.token_hex(8)}"
        tmp_s, tmp_d, tmp_l, tmp_r = temps = [tmp + s for s in (":s", ":d", ":l", ":r")]
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zinterstore(tmp_s, {idx("startedAt"): 1, **{s: 0 for s in sets}})
                pipe.expire(tmp_s, _TMP_TTL)
                if filters.date_from is not None:
                    pipe.zremrangebyscore(tmp_s, "-inf", f"({to_ms(filters.date_from)}")
                if filters.date_to is not None:
                    pipe.zremrangebyscore(tmp_s, f"({to_ms(filters.date_to)}", "+inf")
                await pipe.execute()
            result = tmp_s
            if filters.min_duration is not None or sort_by == "durationSeconds":
                result = await self._duration_set(tmp_s, tmp_l, tmp_d, idx, filters.min_duration, now_ms)
            if sort_by == "endedAt" or (sort_by == "startedAt" and result != tmp_s):
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.zinterstore(tmp_r, {result: 0, idx(sort_by): 1})
                    await pipe.execute()
                result = tmp_r
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zcard(result)
                pipe.zrange(result, start, start + page_size - 1, desc=sort_order == "desc")
                total, ids = await pipe.execute()
        finally:
            await self._redis.delete(*temps)
        return await self._render_ids(tenant_id, ids), int(total)

    async def _render_ids(self, tenant_id: str, ids: list[bytes | str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        raws = await self._redis.mget([self._conv(tenant_id, _text(i)) for i in ids])
        return [self._render(_loads(raw)) for raw in raws if raw is not None]

    async def _page_by_start(
        self, key: str, f: m.ConversationFilter, offset: int, size: int, desc: bool
    ) -> tuple[list[bytes | str], int]:
        """No set filter, sorted by startedAt: one page straight from the startedAt index (no temporary set)."""
        lo = "-inf" if f.date_from is None else to_ms(f.date_from)
        hi = "+inf" if f.date_to is None else to_ms(f.date_to)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcount(key, lo, hi)
            if desc:
                pipe.zrange(key, hi, lo, desc=True, byscore=True, offset=offset, num=size)
            else:
                pipe.zrange(key, lo, hi, byscore=True, offset=offset, num=size)
            total, ids = await pipe.execute()
        return list(ids), int(total)

    async def _duration_set(
        self, selected: str, tmp_live: str, out: str, idx: Callable[[str], str], min_duration: float | None, now_ms: int
    ) -> str:
        """Score the selection by duration: ended ones from the index, live ones from the clock (few at a time)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zinterstore(tmp_live, {selected: 1, idx("status:in_progress"): 0})
            pipe.zrange(tmp_live, 0, -1, withscores=True)
            pipe.zinterstore(out, {selected: 0, idx("duration"): 1})
            pipe.expire(out, _TMP_TTL)
            _, live, _, _ = await pipe.execute()
        async with self._redis.pipeline(transaction=False) as pipe:
            if live:
                pipe.zadd(out, {_text(member): max(0.0, (now_ms - started) / 1000) for member, started in live})
            if min_duration is not None:
                pipe.zremrangebyscore(out, "-inf", f"({min_duration}")
            await pipe.execute()
        return out


def _loads(raw: bytes | str) -> Any:
    return orjson.loads(raw)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
