"""A burst on one Redis pub/sub connection: messages buffered together are handled in order, each once, with
the reader still answering (un)subscriptions and heartbeats between them (hub.broker.redis_pubsub drain)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import redis.asyncio

from hub.broker.redis_broker import RedisBroker
from tests.support.timing import eventually


class Frames:
    def __init__(self) -> None:
        self.frames: list[int] = []

    def on_event(self, event: dict[str, Any]) -> None:
        return None

    def on_audio(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame["frame"])

    def on_gap(self, reason: str) -> None:
        return None


def test_a_burst_is_delivered_in_order_and_the_reader_stays_live(redis_url: str) -> None:
    async def main() -> None:
        broker = RedisBroker(redis_url, prefix="burst")
        await broker.start()
        raw = redis.asyncio.Redis.from_url(redis_url)
        try:
            handled: list[Any] = []
            handle = broker.reader._handle
            broker.reader._handle = lambda reply: (handled.append(reply), handle(reply))  # type: ignore[method-assign]
            listener = Frames()
            subscription = broker.subscribe_conversation("c1", listener)
            await subscription.ready()
            channel = broker.keys.audio("c1")
            payloads = [msgpack.packb({"track": "agent", "frame": n, "data": bytes(960)}) for n in range(3000)]
            async with raw.pipeline(transaction=False) as pipe:  # one write: Redis answers with one big burst
                for payload in payloads:
                    pipe.publish(channel, payload)
                await pipe.execute()
            await eventually(lambda: len(listener.frames) >= 3000, 10, "3000 frames")
            assert listener.frames == list(range(3000))
            assert all(isinstance(reply, list) for reply in handled)  # no "not enough data" sentinel handled as a reply
            assert len(handled) < 3100  # 3000 messages, the subscribe confirmations and a few heartbeats
            late = Frames()
            second = broker.subscribe_conversation("c2", late)  # a subscription right after the burst still goes out
            await second.ready()
            await raw.publish(broker.keys.audio("c2"), msgpack.packb({"track": "agent", "frame": 7, "data": b""}))
            await eventually(lambda: late.frames == [7], 5, "the frame on c2")
            assert broker.ready
            subscription.close()
            second.close()
        finally:
            await raw.aclose()
            await broker.close()

    asyncio.run(main())
