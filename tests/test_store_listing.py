"""list_conversations: every filter, paging and sorting, against a brute-force answer, on both stores."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from hub.store.base import ConversationStore
from hub.store.models import ConversationFilter
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
    return row.duration if row.duration is not None else (now - row.started).total_seconds()


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


def test_every_filter_and_sort_matches_brute_force(url: str | None) -> None:
    async def body(store: ConversationStore, clock: FakeClock) -> None:
        rows = await seed(store, clock)
        now = clock()
        for spec in FILTERS:
            f = ConversationFilter(**spec)
            want = expected(rows, f, now)
            for by in ("startedAt", "endedAt", "durationSeconds"):
                for order in ("asc", "desc"):
                    ordered = sorted(want, key=lambda r: sort_key(r, by, now), reverse=order == "desc")
                    hits, total = await store.list_conversations("ten_l", f, 1, 100, by, order)
                    assert total == len(want), (spec, by, order)
                    assert [h["id"] for h in hits] == [r.id for r in ordered], (spec, by, order)
                    paged: list[str] = []
                    for page in range(1, len(want) // 7 + 2):
                        part, part_total = await store.list_conversations("ten_l", f, page, 7, by, order)
                        assert part_total == len(want), (spec, by, order, page)
                        paged += [h["id"] for h in part]
                    assert paged == [r.id for r in ordered], (spec, by, order, "paged")

    run_with_store(url, body)


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
