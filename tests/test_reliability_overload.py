"""Overload and slow consumers (issue 8, point 4) on a real hub process with Redis.

- A caller flooding audio (far past 3x real time) and DTMF gets Error{rate_limited} and keeps its connection; a calm
  caller next to it gets no error and a monitor keeps receiving every final turn of both conversations.
- A subscriber that stops reading (a long-polling client that stops polling) has its audio dropped past 500 ms
  (Gap{slow_consumer} with droppedFrames) and, past 1 MB of events it must not lose, is closed with
  Close{allowReconnect: true}; a WebSocket monitor on the same conversations loses nothing meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from hub.client.voice import VoiceCaller
from tests.reliability_rig import HubProcess, ResumingMonitor, SpeakingCaller, TurnPipeline, history_finals, token
from tests.support.timing import eventually, scaled

RS = "\x1e"


def _records(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(r) for r in body.decode().split(RS) if r]


async def _monitor_lost(redis_url: str, monitor: ResumingMonitor, ids: list[str]) -> None:
    truth = {c: [int(t["seq"]) for t in await history_finals(redis_url, c)] for c in ids}
    try:
        await eventually(lambda: all(monitor.arrivals[c] == truth[c] for c in ids), 10, "the monitor to catch up")
    except AssertionError:
        pass
    assert all(monitor.arrivals[c] == truth[c] for c in ids), "the monitor lost, repeated or reordered turns"


def test_a_flooding_caller_is_rate_limited_and_others_are_not_hurt(redis_url: str) -> None:
    async def main(hub: HubProcess) -> None:
        tok = await token(hub.base)
        flooder = await VoiceCaller.connect(hub.base, tok, agent_id="agt_echo")
        calm = await VoiceCaller.connect(hub.base, tok, agent_id="agt_echo")
        ids = [flooder.conversation_id, calm.conversation_id]
        monitor = ResumingMonitor([hub.base], tok, ids)
        pipeline = TurnPipeline(redis_url, ids)
        speaker = SpeakingCaller(calm, 1)
        try:
            await monitor.connect()
            await pipeline.start()
            speaker.start()
            chunk = b"\x10\x00" * 1600
            for _ in range(200):  # 20 s of audio at once
                await flooder.send_audio(chunk)
            for _ in range(50):
                await flooder.hub.send("SendDtmfAsync", "5")
            await flooder.wait_for("Error", lambda e: e["code"] == "rate_limited" and "DTMF" in e["message"])
            limited = [e for e in flooder.log.of("Error") if e["code"] == "rate_limited"]
            assert any("3x real time" in e["message"] for e in limited)
            await eventually(lambda: all(len(monitor.arrivals[c]) >= 10 for c in ids), 10, "turns during the flood")
            await speaker.stop()
            await pipeline.stop()
            assert calm.log.of("Error") == [] and speaker.sent > 0
            assert not flooder.hub.closed.is_set() and not calm.hub.closed.is_set()
            await _monitor_lost(redis_url, monitor, ids)
            from hub.publisher import connect

            broker = await connect(redis_url)
            try:
                history = await broker.history(flooder.conversation_id, 0)
            finally:
                await broker.close()
            assert 1 <= sum(1 for e in history.events if e["type"] == "dtmf") <= 20  # the flood did not fill history
            await flooder.end("user_ended")
            await calm.end("user_ended")
        finally:
            await speaker.stop()
            await pipeline.stop()
            await monitor.close()
            await flooder.close()
            await calm.close()

    with HubProcess(redis_url) as hub:
        asyncio.run(main(hub))


def test_a_stalled_subscriber_is_cut_per_the_budget_while_others_keep_receiving(redis_url: str) -> None:
    async def main(hub: HubProcess) -> None:
        tok = await token(hub.base)
        callers = [await VoiceCaller.connect(hub.base, tok, agent_id="agt_echo") for _ in range(2)]
        ids = [c.conversation_id for c in callers]
        monitor = ResumingMonitor([hub.base], tok, ids)
        speakers = [SpeakingCaller(c, i) for i, c in enumerate(callers)]
        small = TurnPipeline(redis_url, ids)
        big = TurnPipeline(redis_url, ids, every=0.05, text_bytes=30_000)
        http = httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {tok}"})
        try:
            await monitor.connect()
            negotiated = (await http.post(hub.base + "/hubs/voice/negotiate?negotiateVersion=1")).json()
            url = f"{hub.base}/hubs/voice?id={negotiated['connectionToken']}"
            assert (await http.get(url)).status_code == 200
            await http.post(url, content=b'{"protocol":"json","version":1}' + RS.encode())
            assert (await http.get(url)).content == b"{}" + RS.encode()
            for n, conversation_id in enumerate(ids):
                invocation = {"type": 1, "invocationId": str(n), "target": "Subscribe",
                              "arguments": [conversation_id, {"audio": "caller", "partials": False}]}
                await http.post(url, content=json.dumps(invocation).encode() + RS.encode())
                records: list[dict[str, Any]] = []
                deadline = time.monotonic() + scaled(15)
                while not any(r.get("type") == 3 and r.get("invocationId") == str(n) for r in records):
                    assert time.monotonic() < deadline, f"no completion for Subscribe({conversation_id}): {records}"
                    records += _records((await http.get(url)).content)
            for speaker in speakers:
                speaker.start()
            await small.start()
            # the poller stops reading: audio piles up past its 500 ms budget and is dropped, reported with Gap
            await eventually(lambda: "voicehub_dropped_audio_frames_total 0\n" not in _metrics(hub), 10,
                             "audio to be dropped for the stalled poller")
            records = _records((await http.get(url)).content)
            gaps = [r["arguments"][0] for r in records if r.get("target") == "Gap"]
            assert gaps and all(g["reason"] == "slow_consumer" and g["droppedFrames"] > 0 for g in gaps)
            gapped = {g["conversationId"] for g in gaps}
            for conversation_id in ids:
                frames = [r["arguments"][0]["frame"] for r in records
                          if r.get("target") == "AudioFrame" and r["arguments"][0]["conversationId"] == conversation_id]
                assert frames and frames == sorted(frames)
                assert len(frames) <= 26  # at most the 500 ms budget (25 frames) was waiting, plus one in flight
                if conversation_id in gapped:  # its frame counter (from 0) skips the dropped audio
                    assert frames[-1] + 1 > len(frames), (conversation_id, frames)
            # stalled again, now with 1.2 MB/s of transcript turns it must not lose: cut with allowReconnect
            await big.start()
            await eventually(lambda: "voicehub_slow_consumers_closed_total 1\n" in _metrics(hub), 10,
                             "the stalled poller to be closed")
            await big.stop()
            records = _records((await http.get(url)).content)
            close = [r for r in records if r.get("type") == 7]
            assert close and close[-1]["allowReconnect"] is True and "slow consumer" in close[-1]["error"]
            assert (await http.get(url)).status_code == 204
            await small.stop()
            for speaker in speakers:
                await speaker.stop()
            assert monitor.gaps == [] and not monitor.closes
            await _monitor_lost(redis_url, monitor, ids)
            for caller in callers:
                await caller.end("user_ended")
        finally:
            for speaker in speakers:
                await speaker.stop()
            await small.stop()
            await big.stop()
            await http.aclose()
            await monitor.close()
            for caller in callers:
                await caller.close()

    with HubProcess(redis_url) as hub:
        asyncio.run(main(hub))


def _metrics(hub: HubProcess) -> str:
    return httpx.get(hub.base + "/metrics", timeout=5).text
