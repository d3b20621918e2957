"""hub.publisher on both brokers: transcript shape with seq, 20 ms agent frames, caller audio and control callbacks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.publisher import FRAME_BYTES, Publisher
from tests.broker_rig import KINDS, Recorder, broker_url, open_broker
from tests.support.timing import eventually


@pytest.mark.parametrize("kind", KINDS)
def test_publisher_events_and_audio(kind: str, request: pytest.FixtureRequest) -> None:
    """Transcripts get seq and the contract's fields; agent audio is cut into counted 20 ms frames."""
    url = broker_url(kind, request)

    async def main() -> None:
        async with open_broker(url) as broker:
            live = Recorder()
            caller: list[dict[str, Any]] = []
            control: list[dict[str, Any]] = []
            sub = broker.subscribe_conversation("conv_1", live)
            pub = Publisher(broker, "conv_1")
            subs = [sub, pub.subscribe_caller_audio(caller.append), pub.subscribe_control(control.append)]
            for s in subs:
                await s.ready()
            seq = await pub.send_transcript("agent", "Hello", is_final=True, turn_id="turn_1", start_time=0.0,
                                            end_time=0.5, confidence=0.9)
            assert seq == 1
            assert await pub.send_cost({"total": 0.01}) == 2
            await pub.send_agent_audio(b"\1\0" * (FRAME_BYTES // 2 * 2 + 10))
            await pub.flush_agent_audio()
            await broker.publish_audio("conv_1", {"track": "caller", "frame": 0, "data": b"\0\0"})
            await broker.publish_control("conv_1", {"type": "whisper", "text": "hi"})
            await eventually(lambda: len(live.frames) == 4 and len(caller) == 1 and len(control) == 1, 5, "messages")
            turn = live.events[0]
            assert {k: turn[k] for k in ("type", "conversationId", "turnId", "role", "text", "isFinal", "startTime",
                                         "endTime", "confidence", "words", "seq")} == {
                "type": "transcript", "conversationId": "conv_1", "turnId": "turn_1", "role": "agent", "text": "Hello",
                "isFinal": True, "startTime": 0.0, "endTime": 0.5, "confidence": 0.9, "words": [], "seq": 1}
            assert turn["timestamp"].endswith("Z")
            agent = [f for f in live.frames if f["track"] == "agent"]
            assert [f["frame"] for f in agent] == [0, 1, 2]
            assert all(len(f["data"]) == FRAME_BYTES and f["sampleRate"] == 24000 for f in agent)
            assert agent[1]["timestampMs"] - agent[0]["timestampMs"] == 20
            for s in subs:
                s.close()

    asyncio.run(main())
