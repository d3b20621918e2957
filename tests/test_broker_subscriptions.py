"""Refcounted subscriptions, leases and Redis outages."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio

from hub.broker.base import BrokerUnavailable
from tests.broker_rig import KINDS, Recorder, broker_url, open_broker
from tests.support.redis_server import RedisServer
from tests.support.timing import eventually


async def _numsub(url: str, channel: str) -> int:
    client = redis.asyncio.Redis.from_url(url)
    try:
        reply: Any = await client.pubsub_numsub(channel)
        return int(reply[0][1])
    finally:
        await client.aclose()


def test_one_redis_subscription_per_channel(redis_url: str) -> None:
    """Two local listeners share one Redis subscription; closing the last one unsubscribes."""

    async def main() -> None:
        async with open_broker(redis_url) as broker:
            a, b = Recorder(), Recorder()
            sub_a = broker.subscribe_conversation("conv_1", a)
            sub_b = broker.subscribe_conversation("conv_1", b)
            await sub_a.ready()
            await sub_b.ready()
            assert await _numsub(redis_url, "voicehub:conv:conv_1:events") == 1
            assert await _numsub(redis_url, "voicehub:conv:conv_1:audio") == 1
            await broker.publish_event("conv_1", {"type": "status"})
            await eventually(lambda: len(a.events) == 1 and len(b.events) == 1, 5, "both listeners")
            assert a.events[0] is b.events[0]  # decoded once for all listeners
            sub_a.close()
            await asyncio.sleep(0.2)
            assert await _numsub(redis_url, "voicehub:conv:conv_1:events") == 1
            sub_b.close()
            sub_b.close()
            for _ in range(100):
                if await _numsub(redis_url, "voicehub:conv:conv_1:events") == 0:
                    break
                await asyncio.sleep(0.05)
            assert await _numsub(redis_url, "voicehub:conv:conv_1:events") == 0

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_leases_exclusive_and_expiring(kind: str, request: pytest.FixtureRequest) -> None:
    """Only one owner holds a lease; renew and release need the owner; an unrenewed lease expires."""
    url = broker_url(kind, request)

    async def main() -> None:
        async with open_broker(url) as broker:
            assert await broker.acquire_lease("rec:conv_1", "node-a", 0.5)
            assert not await broker.acquire_lease("rec:conv_1", "node-b", 0.5)
            assert await broker.renew_lease("rec:conv_1", "node-a", 0.5)
            assert not await broker.renew_lease("rec:conv_1", "node-b", 0.5)
            await broker.release_lease("rec:conv_1", "node-b")
            assert not await broker.acquire_lease("rec:conv_1", "node-b", 0.5)
            await broker.release_lease("rec:conv_1", "node-a")
            assert await broker.acquire_lease("rec:conv_1", "node-b", 0.3)
            for _ in range(100):
                if await broker.acquire_lease("rec:conv_1", "node-c", 5):
                    break
                await asyncio.sleep(0.05)
            assert not await broker.renew_lease("rec:conv_1", "node-b", 1)

    asyncio.run(main())


def test_outage_gap_and_recovery(fresh_redis: RedisServer) -> None:
    """Redis stops: not ready, publishing raises; Redis returns: resubscribed, on_gap, ready and live again."""

    async def main() -> None:
        async with open_broker(fresh_redis.url) as broker:
            live = Recorder()
            control: list[dict[str, Any]] = []
            gaps: list[str] = []
            sub = broker.subscribe_conversation("conv_1", live)
            ctl = broker.subscribe_control("conv_1", control.append, on_gap=gaps.append)
            await sub.ready()
            await ctl.ready()
            assert broker.ready
            fresh_redis.stop()
            await eventually(lambda: not broker.ready, 5, "not ready")
            with pytest.raises(BrokerUnavailable):
                await broker.publish_event("conv_1", {"type": "status"})
            with pytest.raises(BrokerUnavailable):
                await broker.publish_audio("conv_1", {"track": "caller", "data": b"\0\0"})
            fresh_redis.start()
            await eventually(lambda: broker.ready, 8, "ready again")
            await eventually(lambda: live.gaps == ["broker_outage"] and gaps == ["broker_outage"], 5, "on_gap")
            await sub.ready()
            await broker.publish_event("conv_1", {"type": "status"})
            await broker.publish_control("conv_1", {"type": "whisper"})
            await eventually(lambda: len(live.events) == 1 and len(control) == 1, 5, "live again")
            sub.close()
            ctl.close()

    asyncio.run(main())


def test_deaf_connection_detected(fresh_redis: RedisServer) -> None:
    """A frozen Redis (SIGSTOP: sockets open, no answers) makes the broker not ready and publishing fail in bounded time."""
    import os
    import signal

    async def main() -> None:
        async with open_broker(fresh_redis.url, command_timeout=0.5) as broker:
            live = Recorder()
            sub = broker.subscribe_conversation("conv_1", live)
            await sub.ready()
            assert fresh_redis.proc is not None
            os.kill(fresh_redis.proc.pid, signal.SIGSTOP)
            try:
                await eventually(lambda: not broker.ready, 6, "deaf connection noticed")
                with pytest.raises(BrokerUnavailable):
                    await broker.publish_event("conv_1", {"type": "status"})
            finally:
                os.kill(fresh_redis.proc.pid, signal.SIGCONT)
            await eventually(lambda: broker.ready and live.gaps == ["broker_outage"], 10, "recovered")
            sub.close()

    asyncio.run(main())
