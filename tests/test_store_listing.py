"""list_conversations: every filter, paging and sorting, against a brute-force answer, on both stores."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from hub.store import models as m
from hub.store import redis_listing
from hub.store.base import ConversationExists, ConversationStore
from hub.store.memory import MemoryConversationStore
from hub.store.models import ConversationFilter
from hub.store.redis_store import RedisConversationStore
from tests.rest_support import STORE_KINDS, T0, FakeClock, redis_url_for, run_with_store

CHANNELS = ["phone", "webrtc", "sms"]


@dataclass
class Row:
    id: str
    agent: str
    channel: str
    direction: str
    status: str
    outcome: str | None
    tags: list[str]
    started: datetime
    duration: float | None  # None while in progress


@pytest.fixture(params=STORE_KINDS)
def url(request: pytest.FixtureRequest) -> str | None:
    return redis_url_for(request.param, request)


async def seed(store: ConversationStore, clock: FakeClock, n: int = 40) -> list[Row]:
    rng = random.Random(7)
    rows: list[Row] = []
    for i in range(n):
        started = T0 + timedelta(hours=6 * i, seconds=rng.randint(0, 59))
        if i == 5:
            started = rows[4].started  # a tie on startedAt
        row = Row(f"conv_{i:026d}", f"agt_{i % 3}", CHANNELS[i % len(CHANNELS)], "outbound" if i % 4 == 0 else "inbound",
                  "in_progress", None, sorted(rng.sample(["a", "b", "c", "d"], rng.randint(0, 3))), started, None)
        await store.create_conversation("ten_l", agent_id=row.agent, channel=row.channel, direction=row.direction,
                                        conversation_id=row.id, started_at=started)
        if row.tags:
            await store.add_tags("ten_l", row.id, row.tags)
        if i % 5 != 0:
            row.duration = float(rng.randint(1, 600))
            row.status = ["completed", "failed", "abandoned"][i % 3]
            await store.end_conversation("ten_l", row.id, status=row.status, reason="r", ended_at=started + timedelta(seconds=row.duration))
        if i % 2 == 0:
            row.outcome = "resolved" if i % 4 == 0 else "escalated"
            await store.update_conversation("ten_l", row.id, {"outcome": row.outcome})
        rows.append(row)
    await store.create_conversation("ten_other", agent_id="agt_0", channel="phone")
    clock.value = rows[-1].started + timedelta(seconds=100)  # the last live call has lasted 100 s
    return rows


def duration(row: Row, now: datetime) -> float:
    return row.duration if row.duration is not None else max(0.0, (now - row.started).total_seconds())


def sort_key(row: Row, by: str, now: datetime) -> tuple[float, str]:
    if by == "startedAt":
        return row.started.timestamp(), row.id
    if by == "endedAt":
        return (float("inf") if row.duration is None else (row.started.timestamp() + row.duration)), row.id
    return duration(row, now), row.id


def expected(rows: list[Row], f: ConversationFilter, now: datetime) -> list[Row]:
    def ok(r: Row) -> bool:
        return ((f.agent_id is None or r.agent == f.agent_id) and (f.channel is None or r.channel == f.channel)
                and (f.status is None or r.status == f.status) and (f.direction is None or r.direction == f.direction)
                and (f.outcome is None or r.outcome == f.outcome) and set(f.tags) <= set(r.tags)
                and (f.date_from is None or r.started >= f.date_from) and (f.date_to is None or r.started <= f.date_to)
                and (f.min_duration is None or duration(r, now) >= f.min_duration))

    return [r for r in rows if ok(r)]


FILTERS: list[dict[str, Any]] = [
    {},
    {"agent_id": "agt_1"},
    {"channel": "sms"},
    {"status": "in_progress"},
    {"status": "failed", "channel": "phone"},
    {"direction": "outbound"},
    {"outcome": "resolved"},
    {"tags": ("a",)},
    {"tags": ("a", "b")},
    {"min_duration": 300},
    {"min_duration": 100, "status": "in_progress"},
    {"date_from": T0 + timedelta(days=2)},
    {"date_to": T0 + timedelta(days=3)},
    {"date_from": T0 + timedelta(days=1), "date_to": T0 + timedelta(days=6), "tags": ("c",), "min_duration": 50},
    {"agent_id": "agt_nobody"},
]


async def check_every_listing(store: ConversationStore, tenant: str, rows: list[Row], filters: list[dict[str, Any]],
                              now: datetime) -> None:
    """Every filter x sort x order, one page of 100 and pages of 7, against the brute-force answer."""
    for spec in filters:
        f = ConversationFilter(**spec)
        want = expected(rows, f, now)
        for by in ("startedAt", "endedAt", "durationSeconds"):
            for order in ("asc", "desc"):
                ordered = sorted(want, key=lambda r: sort_key(r, by, now), reverse=order == "desc")
                hits, total = await store.list_conversations(tenant, f, 1, 100, by, order)
                assert total == len(want), (spec, by, order)
                assert [h["id"] for h in hits] == [r.id for r in ordered], (spec, by, order)
                paged: list[str] = []
                for page in range(1, len(want) // 7 + 2):
                    part, part_total = await store.list_conversations(tenant, f, page, 7, by, order)
                    assert part_total == len(want), (spec, by, order, page)
                    paged += [h["id"] for h in part]
                assert paged == [r.id for r in ordered], (spec, by, order, "paged")


def test_every_filter_and_sort_matches_brute_force(url: str | None) -> None:
    async def body(store: ConversationStore, clock: FakeClock) -> None:
        rows = await seed(store, clock)
        await check_every_listing(store, "ten_l", rows, FILTERS, clock())

    run_with_store(url, body)


async def seed_ties(store: ConversationStore, clock: FakeClock) -> list[Row]:
    """Many ties (same start, same duration for ended and live calls), calls starting now or later (lasted 0 s),
    mixed-case ids (byte order), reopened, re-ended, re-tagged and deleted calls."""
    rng = random.Random(11)
    now = T0 + timedelta(days=3)
    clock.value = T0
    letters, suffixes = "aAbBzZ09", ["", "0", "00", "a", "Z", "0a", "b9", "zz"]
    starts = [T0 + timedelta(hours=h) for h in (0, 1, 1, 24, 48)] + [now - timedelta(seconds=100), now, now + timedelta(seconds=50)]
    rows: list[Row] = []
    for i in range(64):
        conv_id = f"conv_{letters[i % 8]}{suffixes[i // 8]}"  # ids that prefix others: conv_a, conv_a0, conv_a00
        started = rng.choice(starts)
        row = Row(conv_id, f"agt_{i % 2}", CHANNELS[i % 3], "inbound", "in_progress", None,
                  sorted(rng.sample(["a", "b", "c"], rng.randint(0, 2))), started, None)
        await store.create_conversation("ten_t", agent_id=row.agent, channel=row.channel, direction=row.direction,
                                        conversation_id=conv_id, started_at=started)
        if row.tags:
            await store.add_tags("ten_t", conv_id, row.tags)
        if i % 3 and started < now:
            row.duration = float(rng.choice([0, 5, 100, 100, 3600]))
            row.status = "completed" if i % 2 else "failed"
            await store.end_conversation("ten_t", conv_id, status=row.status, reason="r", ended_at=started + timedelta(seconds=row.duration))
            if i % 7 == 0:  # reopened: in progress again, endedAt cleared
                row.status, row.duration = "in_progress", None
                await store.update_conversation("ten_t", conv_id, {"status": "in_progress"})
                if i % 14 == 0:  # and ended again
                    row.status, row.duration = "abandoned", 5.0
                    await store.end_conversation("ten_t", conv_id, status="abandoned", reason="r", ended_at=started + timedelta(seconds=5))
        if i % 4 == 1:
            row.outcome = "resolved"
            await store.update_conversation("ten_t", conv_id, {"outcome": "escalated"})
            await store.update_conversation("ten_t", conv_id, {"outcome": "resolved"})
        if i % 6 == 5:
            row.tags = ["c"]
            await store.update_conversation("ten_t", conv_id, {"tags": ["c"]})
        if i % 9 == 4:
            assert await store.delete_conversation("ten_t", conv_id)
            continue
        rows.append(row)
    clock.value = now
    return rows


TIE_FILTERS: list[dict[str, Any]] = FILTERS + [
    {"min_duration": 5},
    {"min_duration": 100},
    {"min_duration": 100, "tags": ("a",)},
    {"min_duration": 5, "status": "in_progress", "agent_id": "agt_1"},
    {"tags": ("c", "c")},
    {"date_from": T0 + timedelta(days=3)},
    {"date_from": T0 + timedelta(hours=1), "date_to": T0 + timedelta(hours=1)},
    {"date_to": T0 + timedelta(days=2), "min_duration": 5, "channel": "phone"},
    {"outcome": "escalated"},
    {"status": "completed"},
    {"status": "failed"},
    {"status": "abandoned"},
    {"channel": "phone", "date_from": T0 + timedelta(hours=1), "date_to": T0 + timedelta(days=2)},
    {"status": "completed", "tags": ("a",), "date_from": T0 + timedelta(hours=1)},
    {"agent_id": "agt_0", "tags": ("b",), "channel": "webrtc"},
    {"agent_id": "agt_1", "date_to": T0 + timedelta(days=1), "min_duration": 5},
    # several values and dates: whole UTC days (day bitmaps), days cut by a timestamp bound, no data in range
    {"status": "completed", "channel": "webrtc", "date_from": datetime(2025, 6, 17, tzinfo=UTC),
     "date_to": datetime(2025, 6, 18, 23, 59, 59, 999000, tzinfo=UTC)},
    {"status": "completed", "tags": ("b",), "date_from": datetime(2025, 6, 1, tzinfo=UTC),
     "date_to": datetime(2025, 6, 30, 23, 59, 59, 999000, tzinfo=UTC)},
    {"agent_id": "agt_1", "tags": ("a",), "date_from": T0 + timedelta(minutes=30)},
    {"agent_id": "agt_0", "channel": "phone", "date_to": T0 + timedelta(days=3)},
    {"agent_id": "agt_1", "channel": "sms", "date_from": T0 - timedelta(minutes=1), "date_to": T0 + timedelta(hours=1)},
    {"agent_id": "agt_0", "tags": ("c",), "date_from": T0 + timedelta(days=1, hours=2), "date_to": T0 + timedelta(days=3)},
    {"agent_id": "agt_1", "channel": "sms", "date_from": datetime(2030, 1, 1, tzinfo=UTC)},
    {"agent_id": "agt_1", "channel": "sms", "date_from": T0 + timedelta(days=2), "min_duration": 5},
    # values and minDuration: on a bucket bound, cutting a bucket, in the top buckets, not whole, only open ones
    {"channel": "sms", "min_duration": 3600},
    {"agent_id": "agt_0", "min_duration": 4000},
    {"agent_id": "agt_0", "tags": ("b",), "min_duration": 50},
    {"channel": "phone", "min_duration": 0.5},
    {"status": "completed", "channel": "webrtc", "min_duration": 99},
    {"status": "in_progress", "min_duration": 100},
    {"tags": ("a",), "min_duration": 10**7},
    # dates and minDuration, with and without values: whole days, cut days, both
    {"date_from": datetime(2025, 6, 17, tzinfo=UTC), "date_to": datetime(2025, 6, 19, 23, 59, 59, 999000, tzinfo=UTC),
     "min_duration": 100},
    {"date_from": datetime(2025, 6, 16, tzinfo=UTC), "min_duration": 5, "status": "completed"},
    {"date_to": T0 + timedelta(days=2), "min_duration": 0},
    {"date_from": T0 + timedelta(minutes=30), "date_to": T0 + timedelta(days=3), "min_duration": 99, "channel": "sms"},
    {"date_from": T0 - timedelta(minutes=1), "date_to": T0 + timedelta(hours=1), "min_duration": 4},
    {"agent_id": "agt_1", "date_from": T0 - timedelta(minutes=1), "date_to": T0 + timedelta(hours=1), "min_duration": 4},
]


REDIS_PATHS = [("auto", 1000), ("walk", 2), ("pick", 3), ("auto", 5), ("switch", 4)]


@pytest.mark.parametrize("kind, strategy, chunk", [("memory", "auto", 1000)] + [("redis", *path) for path in REDIS_PATHS])
def test_ties_and_changes_match_brute_force(kind: str, strategy: str, chunk: int, request: pytest.FixtureRequest,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Every path of the Redis listing script (walk, sorted matches, reads a few ids at a time) on awkward data,
    and the memory store on the same data."""
    url = redis_url_for(kind, request)
    monkeypatch.setattr(redis_listing, "STRATEGY", strategy)
    monkeypatch.setattr(redis_listing, "CHUNK", chunk)

    async def body(store: ConversationStore, clock: FakeClock) -> None:
        rows = await seed_ties(store, clock)
        assert len({r.id for r in rows}) == len(rows)
        await check_every_listing(store, "ten_t", rows, TIE_FILTERS + [{"min_duration": 0, "tags": ("a",)}], clock())

    run_with_store(url, body)


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_calls_starting_later_have_lasted_zero_seconds(kind: str, request: pytest.FixtureRequest) -> None:
    """durationSeconds is max(0, now - startedAt) for a live call, so minDuration=0 keeps one starting later."""
    url = redis_url_for(kind, request)

    async def body(store: ConversationStore, clock: FakeClock) -> None:
        rows = await seed_ties(store, clock)
        await check_every_listing(store, "ten_t", rows, [{"min_duration": 0}], clock())

    run_with_store(url, body)


def test_redis_bulk_insert_lists_like_single_writes(redis_url: str) -> None:
    """insert_records (imports, the benchmark) writes the records and indices the single writes do."""

    async def main() -> None:
        clock = FakeClock()
        single = RedisConversationStore.from_url(redis_url, prefix="single", now=clock)
        bulk = RedisConversationStore.from_url(redis_url, prefix="bulk", now=clock)
        try:
            rows = await seed_ties(single, clock)
            records = [await single._load("ten_t", r.id) for r in rows]
            await bulk.insert_records([{k: v for k, v in r.items() if k != "slot"} for r in records if r is not None], batch=7)
            for row in rows:
                assert await bulk.get_conversation("ten_t", row.id) == await single.get_conversation("ten_t", row.id)
            await check_every_listing(bulk, "ten_t", rows, TIE_FILTERS, clock())
            with pytest.raises(ConversationExists):
                await bulk.insert_records([m.new_record("ten_x", rows[0].id, agent_id="agt_0", channel="sms", direction="inbound",
                                                        metadata=None, caller=None, started_at=T0)])
            assert await bulk.tenant_of(rows[0].id) == "ten_t"
        finally:
            await single.aclose()
            await bulk.aclose()

    asyncio.run(main())


def test_redis_data_of_the_earlier_layout_is_indexed_on_first_listing(redis_url: str) -> None:
    """Records without slots and plain sets idx:{field}:{value} (the layout before the listing script) get
    today's indices when their tenant is first listed; the plain sets are dropped; writes go on as usual."""

    async def main() -> None:
        clock = FakeClock()
        source = MemoryConversationStore(now=clock)
        rows = await seed_ties(source, clock)
        redis = Redis.from_url(redis_url)
        store = RedisConversationStore(redis, prefix="legacy", now=clock)
        try:
            p = "legacy:store:t:ten_t"
            async with redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    record = await source._load("ten_t", row.id)
                    assert record is not None
                    pipe.set(f"{p}:conv:{row.id}", orjson.dumps(record))
                    pipe.set(f"legacy:store:owner:{row.id}", "ten_t")
                    for name in ("agentId", "channel", "status", "direction", "outcome"):
                        if record[name] is not None:
                            pipe.sadd(f"{p}:idx:{name}:{record[name]}", row.id)
                    for tag in record["tags"]:
                        pipe.sadd(f"{p}:idx:tag:{tag}", row.id)
                    ended = record["endedAtMs"]
                    pipe.zadd(f"{p}:idx:startedAt", {row.id: record["startedAtMs"]})
                    pipe.zadd(f"{p}:idx:endedAt", {row.id: float("inf") if ended is None else ended})
                    if ended is not None:
                        pipe.zadd(f"{p}:idx:duration", {row.id: (ended - record["startedAtMs"]) / 1000})
                await pipe.execute()
            await check_every_listing(store, "ten_t", rows, TIE_FILTERS, clock())
            assert [key async for key in redis.scan_iter(match="legacy:*:idx:*") if await redis.type(key) == b"set"] == []
            assert await store.upgrade_tenant("ten_t") == 0
            live = next(r for r in rows if r.duration is None and r.started < clock())
            await store.add_tags("ten_t", live.id, ["b", "d"])
            await store.end_conversation("ten_t", live.id, status="completed", reason="r", ended_at=clock())
            live.tags, live.status, live.duration = sorted(set(live.tags) | {"b", "d"}), "completed", (clock() - live.started).total_seconds()
            await check_every_listing(store, "ten_t", rows, [{"tags": ("b", "d")}, {"status": "completed", "min_duration": 5}], clock())
        finally:
            await store.aclose()

    asyncio.run(main())


def test_paging_edges(url: str | None) -> None:
    async def body(store: ConversationStore, clock: FakeClock) -> None:
        rows = await seed(store, clock)
        everything = [r.id for r in sorted(rows, key=lambda r: sort_key(r, "startedAt", clock()), reverse=True)]
        for size in (1, 7, 40, 100):
            pages = []
            for page in range(1, 40 // size + 3):
                hits, total = await store.list_conversations("ten_l", ConversationFilter(), page, size, "startedAt", "desc")
                assert total == 40 and len(hits) <= size
                pages += [h["id"] for h in hits]
            assert pages == everything
        hits, total = await store.list_conversations("ten_l", ConversationFilter(), 99, 20, "startedAt", "desc")
        assert hits == [] and total == 40
        tagged, total = await store.list_conversations("ten_l", ConversationFilter(tags=("a",)), 2, 3, "durationSeconds", "asc")
        assert len(tagged) == min(3, max(0, total - 3))
        for bad in [(0, 20, "startedAt", "desc"), (1, 0, "startedAt", "desc"), (1, 20, "name", "desc"), (1, 20, "startedAt", "up")]:
            with pytest.raises(ValueError):
                await store.list_conversations("ten_l", ConversationFilter(), *bad)

    run_with_store(url, body)
