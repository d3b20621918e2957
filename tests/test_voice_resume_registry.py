"""The caller-session registry (hub/broker/sessions.py, hub/broker/redis_sessions.py): the same rules on memory and
on a real Redis: register, renew, takeover (tenant, expiry), hand-off, begin_end, the sweep's claim."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from hub.broker.sessions import ENDING, MemorySessionRegistry, Renewal, SessionRecord, SessionRegistry

LEASE = 0.3
GRACE = 0.2


def _record(n: int = 1) -> SessionRecord:
    return SessionRecord(f"sess_{n}", "ten_a", f"conv_{n}", "agt_x", owner="node-a")


async def _with_registry(kind: str, request: Any, body: Any) -> None:
    if kind == "memory":
        await body(MemorySessionRegistry())
        return
    from hub.broker.redis_broker import RedisBroker

    broker = RedisBroker(request.getfixturevalue("redis_url"), prefix="regtest")
    await broker.start()
    try:
        await body(broker.sessions)
    finally:
        await broker.close()


def _now_ms() -> int:
    return int(time.time() * 1000)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_takeover_renewal_and_tenant(kind: str, request: Any) -> None:
    async def body(registry: SessionRegistry) -> None:
        record = _record()
        await registry.register(record, LEASE, GRACE)
        assert await registry.renew("node-a", [Renewal(record.session_id, record.conversation_id, 480)], LEASE, GRACE) == [True]
        assert await registry.take_over(record.session_id, "ten_other", "node-b", LEASE, GRACE) is None
        assert await registry.take_over("sess_unknown", "ten_a", "node-b", LEASE, GRACE) is None
        before = await registry.take_over(record.session_id, "ten_a", "node-b", LEASE, GRACE)
        assert before is not None and before.owner == "node-a" and before.agent_ms == 480
        assert before.conversation_id == "conv_1" and before.agent_id == "agt_x"
        # the old owner sees it lost the session; the new one renews
        assert await registry.renew("node-a", [Renewal(record.session_id, record.conversation_id, 500)], LEASE, GRACE) == [False]
        assert not await registry.update(record.session_id, "node-a", agent_ms=1)
        assert await registry.renew("node-b", [Renewal(record.session_id, record.conversation_id, 20)], LEASE, GRACE) == [True]
        assert not await registry.begin_end(record.session_id, "node-a")
        assert await registry.begin_end(record.session_id, "node-b")
        assert await registry.take_over(record.session_id, "ten_a", "node-c", LEASE, GRACE) is None  # ending
        await registry.finish(record.session_id, record.conversation_id, "node-b")
        assert await registry.get(record.session_id) is None

    asyncio.run(_with_registry(kind, request, body))


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_handoff_resume_window_and_sweep(kind: str, request: Any) -> None:
    async def body(registry: SessionRegistry) -> None:
        handed, lost, waiting = _record(1), _record(2), _record(3)
        for record in (handed, lost, waiting):
            await registry.register(record, LEASE, GRACE)
        # a drained node hands `handed` off for 0.4 s; `lost`'s node dies (no more renewals);
        # `waiting` asked for a long resume window before its node died
        assert await registry.release(handed, "node-a", _now_ms() + 400, 960)
        assert await registry.update(waiting.session_id, "node-a", resume_before_ms=_now_ms() + 60_000)
        assert await registry.claim_expired(handed.session_id, "node-b", LEASE) is None  # not yet
        got = await registry.get(handed.session_id)
        assert got is not None and got.owner == "" and got.agent_ms == 960
        claimed: dict[str, SessionRecord] = {}

        async def sweep() -> None:
            for session_id in await registry.due(10):
                record = await registry.claim_expired(session_id, "node-b", LEASE)
                if record is not None:
                    assert session_id not in claimed
                    claimed[session_id] = record

        async def sweep_until(ids: set[str]) -> None:
            while not ids <= set(claimed):
                await sweep()
                await asyncio.sleep(0.02)

        await asyncio.wait_for(sweep_until({handed.session_id, lost.session_id}), 5)
        assert claimed[handed.session_id].resume_before_ms > 0 and claimed[lost.session_id].resume_before_ms == 0
        assert (await registry.get(lost.session_id)).state == ENDING  # type: ignore[union-attr]
        assert await registry.take_over(lost.session_id, "ten_a", "node-c", LEASE, GRACE) is None
        await sweep()
        assert waiting.session_id not in claimed  # still inside its resume window after its lease lapsed
        resumed = await registry.take_over(waiting.session_id, "ten_a", "node-c", LEASE, GRACE)
        assert resumed is not None and resumed.owner == "node-a"
        for session_id, record in claimed.items():
            await registry.finish(session_id, record.conversation_id, "node-b")
            assert await registry.get(session_id) is None

    asyncio.run(_with_registry(kind, request, body))


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_lapsed_lease_is_taken_back_by_its_owner(kind: str, request: Any) -> None:
    """An owner that could not renew for a while (a stall, a short Redis outage) keeps its session if nobody took it."""

    async def body(registry: SessionRegistry) -> None:
        record = _record()
        await registry.register(record, 0.05, 5.0)
        await asyncio.sleep(0.1)
        assert await registry.claim_expired(record.session_id, "node-b", LEASE) is None  # inside the grace
        assert await registry.renew("node-a", [Renewal(record.session_id, record.conversation_id, 0)], LEASE, GRACE) == [True]

    asyncio.run(_with_registry(kind, request, body))
