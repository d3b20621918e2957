"""Issue 4's Done-when, end to end: a simulated caller (hub.simulate as a library) on one hub, monitors with the
official npm client (JSON and MessagePack) and the project's Python client on another, the echo agent answering.

On Redis: a real redis-server, two `python -m hub serve` processes and `python -m hub agent`. In memory: the same
scenario against one in-process hub with the in-process echo agent. Checked: every final transcript turn reaches
every subscriber exactly once and in order (snapshot + live, against the history), seqs after each snapshot have
no gap and no duplicate, audio in each requested format, a late joiner, tenant isolation, barge exclusivity across
nodes, bad input that gets the contract's error, and the analysis of the finished call in the REST API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.client.signalr import HubError
from hub.client.voice import VoiceCaller, VoiceMonitor, audio_bytes
from hub.simulate.callers import simulate_call
from tests.support.rest_poll import get_when
from tests.support.timing import eventually, scaled, wait_for
from tests.voice_rig import MONITOR_SCOPES, hub_processes, mint_token, voice_hub

NODE_DIR = Path(__file__).parent / "node"
CALL_SECONDS = 6.5
PHRASE = 2  # the simulated caller starts with hub.simulate.speech.PHRASES[2] (the shortest two come first)

NODE_MONITORS = [("json", {"audio": "mixed", "encoding": "mulaw", "sampleRate": 8000}),
                 ("messagepack", {"audio": "caller", "encoding": "pcm_s16le", "sampleRate": 16000})]
PY_MONITORS = [(False, {"audio": "agent", "encoding": "pcm_s16le", "sampleRate": 24000}),
               (True, {"audio": "both", "encoding": "mulaw", "sampleRate": 48000})]


def frame_bytes(options: dict[str, Any]) -> int:
    return int(options["sampleRate"]) // 50 * (2 if options["encoding"] == "pcm_s16le" else 1)


def tracks(options: dict[str, Any]) -> set[str]:
    return {"caller", "agent"} if options["audio"] == "both" else {str(options["audio"])}


@contextlib.asynccontextmanager
async def node_monitor(base: str, token: str, protocol: str, options: dict[str, Any]) -> AsyncIterator[Any]:
    """tests/node/voice_monitor.cjs, started and READY (SubscribeAll done); `.result()` awaits its RESULT line."""
    proc = await asyncio.create_subprocess_exec(
        "node", str(NODE_DIR / "voice_monitor.cjs"), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "BASE": base, "TOKEN": token, "PROTOCOL": protocol, "OPTIONS": json.dumps(options),
             "TIMEOUT_MS": str(int(scaled(40) * 1000))})
    assert proc.stdout is not None and proc.stderr is not None

    async def line() -> str:
        assert proc.stdout is not None
        return (await proc.stdout.readline()).decode()

    class Node:
        @staticmethod
        async def result() -> dict[str, Any]:
            while True:
                text = await wait_for(line(), 40)
                assert text, "the node monitor exited without a RESULT"
                if text.startswith("RESULT "):
                    out: dict[str, Any] = json.loads(text[7:])
                    return out

    try:
        first = await wait_for(line(), 15)
        assert first.strip() == "READY", first + (await proc.stderr.read()).decode()
        yield Node()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def follow_first_call(monitor: VoiceMonitor, options: dict[str, Any]) -> dict[str, Any]:
    """Wait for the first ConversationStarted (SubscribeAll done before), Subscribe to it; returns the snapshot."""
    started = await monitor.wait_for("ConversationStarted", seconds=scaled(15))
    snapshot: dict[str, Any] = await monitor.subscribe(started["id"], options)
    return snapshot


def check_python_monitor(monitor: VoiceMonitor, snapshot: dict[str, Any], options: dict[str, Any] | None,
                         truth: list[str], last_seq: int) -> None:
    cid = snapshot["conversation"]["id"]
    live = [t["turnId"] for t in monitor.log.of("TranscriptTurn") if t["conversationId"] == cid and t["isFinal"]]
    assert [t["turnId"] for t in snapshot["transcript"]] + live == truth
    seqs = [s for s in monitor.seqs(cid) if snapshot["seq"] < s <= last_seq]
    assert seqs == list(range(snapshot["seq"] + 1, last_seq + 1)), seqs
    if options is None:
        return
    frames = [f for f in monitor.log.of("AudioFrame") if f["conversationId"] == cid]
    assert {f["track"] for f in frames} == tracks(options)
    for track in tracks(options):
        mine = [f for f in frames if f["track"] == track]
        assert len(mine) > 25, (track, len(mine))
        counters = [f["frame"] for f in mine]
        assert counters == sorted(set(counters))  # increasing; a jump would only mean audio dropped for slowness
        for frame in mine:
            assert frame["encoding"] == options["encoding"] and frame["sampleRate"] == options["sampleRate"]
            assert isinstance(frame["data"], bytes if monitor.msgpack else str)
            assert len(audio_bytes(frame["data"])) == frame_bytes(options) and frame["channels"] == 1


def check_node_monitor(result: dict[str, Any], options: dict[str, Any], cid: str, truth: list[str], last_seq: int) -> None:
    assert result["conversationId"] == cid and result["subscribeError"] is None, result
    assert "was not found" in result["errors"]["unknownConversation"]
    assert "options.audio must be one of" in result["errors"]["badOptions"]
    snapshot = result["snapshot"]
    live = [e["turnId"] for e in result["events"] if e["name"] == "TranscriptTurn" and e["isFinal"]]
    assert [t["turnId"] for t in snapshot["transcript"]] + live == truth
    seqs = [e["seq"] for e in result["events"]]
    assert seqs == list(range(snapshot["seq"] + 1, last_seq + 1)), seqs
    assert set(result["audio"]) == tracks(options)
    for audio in result["audio"].values():
        assert audio["count"] > 25 and audio["increasing"], audio
        assert audio["encodings"] == [options["encoding"]] and audio["rates"] == [options["sampleRate"]]
        assert audio["sizes"] == [frame_bytes(options)] and audio["channels"] == [1]
        assert audio["dataTypes"] == (["bytes"] if result["protocol"] == "messagepack" else ["string"])


async def scenario(monitor_base: str, caller_base: str, other_base: str, history: Any) -> None:
    """Monitors on `monitor_base`, the caller on `caller_base`, a second supervisor on `other_base`; `history` is a
    Broker to read the conversation's history from (the truth every subscriber is compared with)."""
    watch_token = mint_token(MONITOR_SCOPES, subject="usr_boss")
    async with contextlib.AsyncExitStack() as stack:
        nodes = [await stack.enter_async_context(node_monitor(monitor_base, watch_token, protocol, options))
                 for protocol, options in NODE_MONITORS]
        pythons = []
        for msgpack, _options in PY_MONITORS:
            monitor = await VoiceMonitor.connect(monitor_base, watch_token, msgpack=msgpack)
            stack.push_async_callback(monitor.close)
            await monitor.subscribe_all({}, {"transcript": False})
            pythons.append(monitor)
        stranger = await VoiceMonitor.connect(monitor_base, mint_token(MONITOR_SCOPES, tenant="ten_other"))
        stack.push_async_callback(stranger.close)
        await stranger.subscribe_all({})

        call = asyncio.get_running_loop().create_task(simulate_call(
            caller_base, mint_token({"voice:session"}), duration=CALL_SECONDS, msgpack=True, index=PHRASE,
            agent_id="agt_e2e"))
        snapshots = [await follow_first_call(m, options) for m, (_, options) in zip(pythons, PY_MONITORS, strict=True)]
        cid = snapshots[0]["conversation"]["id"]

        # a late joiner: after the first agent answer, snapshot then live
        boss = pythons[0]
        await boss.wait_for("TranscriptTurn", lambda t: t["role"] == "agent" and t["isFinal"], scaled(15))
        late = await VoiceMonitor.connect(monitor_base, mint_token({"monitor:read"}, subject="usr_late"))
        stack.push_async_callback(late.close)
        late_snapshot = await late.subscribe(cid)
        assert late_snapshot["transcript"], "the late joiner's snapshot has the turns so far"

        # barge is exclusive across nodes; the second supervisor is told who holds it
        other = await VoiceMonitor.connect(other_base, mint_token(MONITOR_SCOPES, subject="usr_other"))
        stack.push_async_callback(other.close)
        await boss.barge(cid)
        with pytest.raises(HubError, match="already barged by usr_boss"):
            await other.barge(cid)
        await boss.release_barge(cid)
        await other.barge(cid)
        await other.release_barge(cid)

        # tenant isolation: another tenant's monitor cannot find it and saw nothing of it
        with pytest.raises(HubError, match="was not found"):
            await stranger.subscribe(cid)
        assert cid not in {c["id"] for c in await stranger.list_conversations()}

        result = await wait_for(call, CALL_SECONDS + 20)
        assert result.error is None and result.ended is not None and result.final_turns >= 2, result
        assert result.conversation_id == cid
        node_results = [await node.result() for node in nodes]
        for monitor in (*pythons, late):
            await monitor.wait_for("ConversationEnded", lambda e: e["conversationId"] == cid, scaled(10))
        events = (await history.history(cid, 0)).events
        truth = [e["turnId"] for e in events if e.get("type") == "transcript" and e.get("isFinal")]
        last_seq = next(e["seq"] for e in events if e.get("type") == "ended")  # cost and analysis may follow
        assert len(truth) >= 2  # the first exchange at least (a loaded machine may cut the second one short)
        for monitor, snapshot, (_, options) in zip(pythons, snapshots, PY_MONITORS, strict=True):
            check_python_monitor(monitor, snapshot, options, truth, last_seq)
        check_python_monitor(late, late_snapshot, None, truth, last_seq)
        assert late.log.of("AudioLevel") and not late.log.of("AudioFrame")
        for node_result, (_, options) in zip(node_results, NODE_MONITORS, strict=True):
            check_node_monitor(node_result, options, cid, truth, last_seq)
        actions = [(c["action"], c["by"]) for c in boss.log.of("Control")]
        assert actions == [("barge", "usr_boss"), ("release", "usr_boss"), ("barge", "usr_other"),
                           ("release", "usr_other")]
        assert not any(isinstance(p, dict) and p.get("conversationId") == cid for _, p in stranger.log.events)

        await bad_input(monitor_base, caller_base)
        await analysis_of(caller_base, cid)


async def bad_input(monitor_base: str, caller_base: str) -> None:
    """Bad base64, odd-length PCM, bad DTMF, an unknown conversation and a missing scope: errors, nothing breaks."""
    caller = await VoiceCaller.connect(caller_base, mint_token({"voice:session"}), agent_id="agt_bad")
    reader = await VoiceMonitor.connect(monitor_base, mint_token({"monitor:read"}))
    try:
        await caller.hub.send("SendAudioAsync", "%%% not base64")
        first = await caller.wait_for("Error", seconds=scaled(5))
        await caller.hub.send("SendAudioAsync", "AAEC")  # 3 bytes
        second = await caller.wait_for("Error", lambda e: e is not first, scaled(5))
        assert first["code"] == second["code"] == "audio_invalid"
        with pytest.raises(HubError, match="DTMF digit must be one of"):
            await caller.send_dtmf("x")
        with pytest.raises(HubError, match="was not found"):
            await reader.subscribe("conv_01HXDEF456GHIJKLMNOPQRSTUV")
        with pytest.raises(HubError, match="Failed to invoke 'Whisper' because user is unauthorized"):
            await reader.whisper(caller.conversation_id, "hi")
        snapshot = await reader.subscribe(caller.conversation_id)  # both connections still work
        assert snapshot["conversation"]["agentId"] == "agt_bad"
        await caller.send_dtmf("9")
        await reader.wait_for("Dtmf", seconds=scaled(10))
        await caller.end("user_ended")
    finally:
        await reader.close()
        await caller.close()


async def analysis_of(base: str, conversation_id: str) -> None:
    """The echo agent publishes an analysis once the call ended; the caller's node stores it for REST."""
    headers = {"Authorization": f"Bearer {mint_token({'conversations:read'})}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
        analysis = await get_when(http, f"/api/v1/conversations/{conversation_id}/analysis", seconds=10, every=0.1)
        assert analysis["conversationId"] == conversation_id and analysis["summary"].startswith("Echo test call")
        assert analysis["sentiment"] == "neutral" and analysis["customFields"]["turns"] >= 1
        costs = (await http.get(f"/api/v1/conversations/{conversation_id}/costs")).json()
        assert costs["total"] > 0 and set(costs["breakdown"]) == {"stt", "llm", "tts", "telephony"}
        transcript = (await http.get(f"/api/v1/conversations/{conversation_id}/transcript")).json()
        assert transcript["turns"][0]["text"] == "Can you tell me when it will arrive?"


def test_end_to_end_two_hub_processes_on_redis(redis_url: str, tmp_path: Path) -> None:
    import redis

    serve = ["serve", "--port", "{port}", "--redis-url", redis_url, "--agent", "none", "--data-dir", str(tmp_path)]
    with hub_processes(serve, serve, ["agent", "--redis-url", redis_url], ready_paths=["/readyz", "/readyz", None]) as bases:
        node1, node2, _ = bases
        client = redis.Redis.from_url(redis_url)
        try:  # the agent listens once it subscribed to the lifecycle channel
            from tests.support.timing import eventually_sync

            eventually_sync(lambda: dict(client.pubsub_numsub("voicehub:conversations")).get(
                b"voicehub:conversations", 0) >= 1, 15, "the echo agent to subscribe")
        finally:
            client.close()

        async def main() -> None:
            from hub.broker.redis_broker import RedisBroker

            broker = RedisBroker(redis_url)
            await broker.start()
            try:
                await scenario(node1, node2, node2, broker)
            finally:
                await broker.close()

        asyncio.run(main())


def test_end_to_end_in_memory_one_process(tmp_path: Path) -> None:
    async def main() -> None:
        async with voice_hub(agent="echo", tmp_path=tmp_path) as rig:
            await eventually(lambda: bool(rig.runtime.tasks), 5, "the in-process echo agent")
            await scenario(rig.base, rig.base, rig.base, rig.runtime.broker)

    asyncio.run(main())
