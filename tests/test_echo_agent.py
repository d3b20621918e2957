"""The echo agent answers a simulated caller: final user turn, final agent turn, agent audio frames."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from hub.agent.echo import run_echo_agent
from tests.broker_rig import KINDS, Recorder, broker_url, open_broker
from tests.support.timing import eventually, wait_for


def _caller_frames(seconds: float, amplitude: float) -> list[bytes]:
    t = np.arange(int(seconds * 16000)) / 16000
    pcm = (np.sin(2 * np.pi * 300 * t) * amplitude).astype("<i2").tobytes()
    return [pcm[i:i + 640] for i in range(0, len(pcm), 640)]


@pytest.mark.parametrize("kind", KINDS)
def test_echo_agent_answers_speech(kind: str, request: pytest.FixtureRequest) -> None:
    """One second of tone then silence yields a final user turn, a final agent turn and 24 kHz agent audio."""
    url = broker_url(kind, request)

    async def main() -> None:
        async with open_broker(url) as broker:
            stop = asyncio.Event()
            listening = asyncio.Event()
            agent = asyncio.get_running_loop().create_task(run_echo_agent(broker, stop, listening))
            live = Recorder()
            sub = broker.subscribe_conversation("conv_1", live)
            await sub.ready()
            await wait_for(listening.wait(), 5)
            await broker.publish_event("conv_1", {"type": "started", "conversationId": "conv_1"}, lifecycle=True)
            await eventually(lambda: any(f["track"] == "agent" for f in live.frames), 5, "greeting audio")
            frames = _caller_frames(1.0, 8000) + _caller_frames(0.8, 0)
            for n, data in enumerate(frames):
                await broker.publish_audio("conv_1", {"conversationId": "conv_1", "track": "caller", "frame": n,
                                                      "encoding": "pcm_s16le", "sampleRate": 16000, "channels": 1,
                                                      "timestampMs": n * 20, "data": data})
            def finals(role: str) -> list[dict[str, object]]:
                return [e for e in live.events if e.get("type") == "transcript" and e["role"] == role and e["isFinal"]]
            await eventually(lambda: finals("user") and finals("agent"), 5, "final turns")
            assert finals("user")[0]["text"] == "[speech 1.0 s]"
            assert finals("agent")[0]["text"] == "I heard 1.0 seconds of speech."
            agent_frames = [f for f in live.frames if f["track"] == "agent"]
            assert all(f["sampleRate"] == 24000 and len(f["data"]) == 960 for f in agent_frames)
            assert [f["frame"] for f in agent_frames] == list(range(len(agent_frames)))
            await eventually(lambda: any(e.get("type") == "cost" for e in live.events), 5, "cost update")
            stop.set()
            await asyncio.wait_for(agent, 5)
            sub.close()

    asyncio.run(main())
