"""Events, history and audio on both brokers: one seq counter, history equals live, trimming, audiolog."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.broker_rig import KINDS, Recorder, broker_url, open_broker
from tests.support.timing import eventually, wait_for


@pytest.mark.parametrize("kind", KINDS)
def test_seq_strictly_increasing_and_shared(kind: str, request: pytest.FixtureRequest) -> None:
    """Every publisher of a conversation draws from one counter; conversations count separately."""
    url = broker_url(kind, request)

    async def main() -> None:
        async with open_broker(url) as a, open_broker(url) as other:
            b = other if url else a  # two Redis brokers share Redis; memory brokers share nothing
            seqs = await asyncio.gather(*(
                (a if i % 2 else b).publish_event("conv_1", {"type": "transcript", "n": i}) for i in range(50)))
            assert sorted(seqs) == list(range(1, 51))
            assert await a.publish_event("conv_2", {"type": "status"}) == 1
            assert await b.last_seq("conv_1") == 50
            assert await a.last_seq("conv_unknown") == 0

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_history_equals_live(kind: str, request: pytest.FixtureRequest) -> None:
    """A subscriber sees live exactly what history holds afterwards: same events, same seqs, same order."""
    url = broker_url(kind, request)

    async def main() -> None:
        async with open_broker(url) as broker:
            live = Recorder()
            sub = broker.subscribe_conversation("conv_1", live)
            await sub.ready()
            for i in range(1000):
                await broker.publish_event("conv_1", {"type": "transcript", "conversationId": "conv_1", "text": f"t{i}",
                                                      "isFinal": i % 3 == 0, "turnId": None, "words": [], "cost": {}})
            await eventually(lambda: len(live.events) == 1000, 5, "1000 live events")
            history = await broker.history("conv_1", 0)
            assert history.events == live.events
            assert [e["seq"] for e in live.events] == list(range(1, 1001))
            assert history.last_seq == 1000 and not history.trimmed
            assert live.events[0] == {"type": "transcript", "conversationId": "conv_1", "text": "t0", "isFinal": True,
                                      "turnId": None, "words": [], "cost": {}, "seq": 1}
            sub.close()

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_history_after_seq_and_trimmed(kind: str, request: pytest.FixtureRequest) -> None:
    """history(after_seq) returns only later events; events lost to the cap are reported as trimmed."""
    url = broker_url(kind, request)

    async def main() -> None:
        async with open_broker(url, log_maxlen=20) as broker:
            for i in range(500):
                await broker.publish_event("conv_1", {"type": "transcript", "n": i})
            tail = await broker.history("conv_1", 495)
            assert [e["seq"] for e in tail.events] == [496, 497, 498, 499, 500]
            assert tail.last_seq == 500 and not tail.trimmed
            everything = await broker.history("conv_1", 0)
            seqs = [e["seq"] for e in everything.events]
            assert everything.trimmed and seqs[-1] == 500 and seqs == list(range(seqs[0], 501))
            assert 20 <= len(seqs) < 500
            assert not (await broker.history("conv_1", 500)).trimmed
            assert (await broker.history("conv_1", 500)).events == []
            limited = await broker.history("conv_1", 480, limit=5)
            assert [e["seq"] for e in limited.events] == [496, 497, 498, 499, 500] and limited.trimmed

    asyncio.run(main())


def _frame(i: int, track: str = "caller") -> dict[str, Any]:
    return {"conversationId": "conv_1", "track": track, "frame": i, "encoding": "pcm_s16le", "sampleRate": 16000,
            "channels": 1, "timestampMs": i * 20, "data": bytes([i % 256]) * 640}


@pytest.mark.parametrize("kind", KINDS)
def test_audio_live_and_recent_not_in_history(kind: str, request: pytest.FixtureRequest) -> None:
    """Audio frames arrive live with bytes intact, stay out of history and have no seq; recent_audio reads the audiolog."""
    url = broker_url(kind, request)

    async def main() -> None:
        async with open_broker(url) as broker:
            live = Recorder()
            sub = broker.subscribe_conversation("conv_1", live)
            await sub.ready()
            for i in range(100):
                await broker.publish_audio("conv_1", _frame(i))
            await broker.publish_event("conv_1", {"type": "status"})
            await eventually(lambda: len(live.frames) == 100 and len(live.events) == 1, 5, "frames")
            assert live.frames[7] == _frame(7) and isinstance(live.frames[7]["data"], bytes)
            assert all("seq" not in f for f in live.frames)
            history = await broker.history("conv_1", 0)
            assert [e["type"] for e in history.events] == ["status"] and history.last_seq == 1
            recent = await broker.recent_audio("conv_1", 1000)
            assert [f["frame"] for f in recent] == list(range(50, 100))
            assert recent[0] == _frame(50)
            sub.close()

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_lifecycle_and_control_channels(kind: str, request: pytest.FixtureRequest) -> None:
    """lifecycle=True also reaches voicehub:conversations; control messages reach only control listeners."""
    url = broker_url(kind, request)

    async def main() -> None:
        async with open_broker(url) as broker:
            lifecycle: list[dict[str, Any]] = []
            control: list[dict[str, Any]] = []
            live = Recorder()
            subs = [broker.subscribe_lifecycle(lifecycle.append), broker.subscribe_control("conv_1", control.append),
                    broker.subscribe_conversation("conv_1", live)]
            for sub in subs:
                await sub.ready()
            await broker.publish_event("conv_1", {"type": "started", "conversationId": "conv_1"}, lifecycle=True)
            await broker.publish_event("conv_1", {"type": "transcript"})
            await broker.publish_control("conv_1", {"type": "whisper", "text": "be brief"})
            await broker.publish_control("conv_2", {"type": "whisper", "text": "not ours"})
            await eventually(lambda: len(live.events) == 2 and len(control) == 1 and len(lifecycle) == 1, 5, "messages")
            assert lifecycle == [{"type": "started", "conversationId": "conv_1", "seq": 1}]
            assert control == [{"type": "whisper", "text": "be brief"}]
            assert [e["seq"] for e in live.events] == [1, 2]
            for sub in subs:
                sub.close()

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_expire_and_delete_history(kind: str, request: pytest.FixtureRequest) -> None:
    """delete_history forgets events, counter and audio; expire_history keeps them until the TTL."""
    url = broker_url(kind, request)

    async def main() -> None:
        async with open_broker(url) as broker:
            await broker.publish_event("conv_1", {"type": "transcript"})
            await broker.publish_audio("conv_1", _frame(0))
            await broker.expire_history("conv_1", 3600)
            assert (await broker.history("conv_1", 0)).last_seq == 1
            await broker.delete_history("conv_1")
            assert await broker.last_seq("conv_1") == 0
            assert (await broker.history("conv_1", 0)).events == []
            assert await broker.recent_audio("conv_1", 0) == []
            await broker.publish_event("conv_2", {"type": "transcript"})
            await broker.expire_history("conv_2", 1)
            await wait_for(_until_gone(broker, "conv_2"), 5)

    asyncio.run(main())


async def _until_gone(broker: Any, conversation_id: str) -> None:
    for _ in range(1000):
        if await broker.last_seq(conversation_id) == 0:
            return
        await asyncio.sleep(0.05)
