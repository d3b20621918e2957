"""Caller sessions that any node can resume (docs/voicehub.md "Sessions across nodes"), on real processes: redis-server,
two hub processes (`python -m hub serve --redis-url ... --agent none`, one JWT secret) and the echo agent process.

- A caller on node A asks for a reconnection window, drops, and resumes on node B: same session and conversation,
  SessionStarted{resumed: true}, agent audio published while it was away is delivered, the transcript continues, and
  the conversation ends completed with every final turn of history in REST.
- SIGTERM of A with a live caller: Close{allowReconnect: true}, the caller resumes on B.
- SIGKILL of A: a caller that comes back in time resumes on B; the conversation of one that never comes back is ended
  as abandoned by B's sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import httpx

from hub.client.voice import VoiceCaller
from hub.simulate.speech import SILENCE_FRAME, frames, synthetic_phrase
from tests.reliability_rig import BOOTSTRAP_KEY, AgentProcess, HubProcess, history_finals, token
from tests.support.timing import eventually, scaled, wait_for

LEASE = "3"  # VOICEHUB_SESSION_LEASE for the nodes: a killed node's sessions are swept ~6 s later
AGENT_FRAME = 960  # 20 ms of PCM16 24 kHz
IN_FLIGHT = 25 * AGENT_FRAME  # agent audio a dropped connection may take down with it (0.5 s)
SCRIPT = {"userScript": ["first words", "second words", "third words"],
          "script": ["first answer", "second answer", "third answer"]}


@contextlib.contextmanager
def cluster(redis_url: str) -> Iterator[tuple[HubProcess, HubProcess]]:
    """Two hub nodes and the echo agent, started side by side (each start takes seconds on a loaded machine)."""
    env = {"VOICEHUB_SESSION_LEASE": LEASE}
    with ThreadPoolExecutor(3) as pool:
        starts = [pool.submit(HubProcess, redis_url, "--agent", "none", env=env) for _ in range(2)]
        starts.append(pool.submit(AgentProcess, redis_url))
        wait(starts)
    started = [f.result() for f in starts if f.exception() is None]
    try:
        if len(started) < 3:
            raise next(e for f in starts if (e := f.exception()) is not None)
        a, b, _agent = started
        assert isinstance(a, HubProcess) and isinstance(b, HubProcess)
        yield a, b
    finally:
        for process in started:
            process.stop()


async def speak(caller: VoiceCaller, seed: int) -> None:
    """Real-time paced speech, then a pause: the echo agent answers in pauses."""
    for frame in frames(synthetic_phrase(4, seed=seed)) + [SILENCE_FRAME] * 45:
        await caller.send_audio(frame)
        await asyncio.sleep(0.02)


async def exchange(caller: VoiceCaller, text: str) -> None:
    """Speak and wait for the user's final turn `text` and the agent's final answer."""
    await speak(caller, seed=len(text))
    await caller.wait_for("Transcription", lambda t: t["isFinal"] and t["role"] == "user" and t["text"] == text,
                          scaled(10))
    answer = SCRIPT["script"][SCRIPT["userScript"].index(text)]
    await caller.wait_for("Transcription", lambda t: t["isFinal"] and t["role"] == "agent" and t["text"] == answer,
                          scaled(10))


async def rest(base: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"},
                                 timeout=10) as http:
        return await http.get("/api/v1/conversations/" + path)


async def check_rest(base: str, redis_url: str, conversation_id: str, status: str) -> dict[str, Any]:
    """The conversation has `status` and REST holds every final turn of its history, once."""
    conversation: dict[str, Any] = {}

    async def ended() -> bool:
        nonlocal conversation
        conversation = (await rest(base, conversation_id)).json()
        return bool(conversation.get("status") == status)

    deadline = asyncio.get_running_loop().time() + scaled(15)
    while not await ended():
        assert asyncio.get_running_loop().time() < deadline, conversation
        await asyncio.sleep(0.1)
    finals = await history_finals(redis_url, conversation_id)
    turns = (await rest(base, conversation_id + "/transcript")).json()["turns"]
    assert sorted(t["id"] for t in turns) == sorted(t["turnId"] for t in finals), (turns, finals)
    return conversation


async def pipeline_turn(redis_url: str, conversation_id: str, text: str) -> None:
    from hub.publisher import Publisher, connect

    broker = await connect(redis_url)
    try:
        await Publisher(broker, conversation_id).send_transcript("agent", text, is_final=True, start_time=9, end_time=10)
    finally:
        await broker.close()


async def agent_bytes(redis_url: str, conversation_id: str) -> int:
    """Agent audio published so far (the audiolog holds the whole of these short calls)."""
    from hub.publisher import connect

    broker = await connect(redis_url)
    try:
        recent = await broker.recent_audio(conversation_id, 0)
    finally:
        await broker.close()
    return sum(len(f["data"]) for f in recent if f.get("track") == "agent")


def test_resume_on_another_node_after_a_dropped_connection(redis_url: str) -> None:
    async def main(a: HubProcess, b: HubProcess) -> None:
        tok = await token(a.base, ["voice:session"])
        caller = await VoiceCaller.connect(a.base, tok, agent_id="agt_echo", metadata=SCRIPT)
        again: VoiceCaller | None = None
        try:
            await exchange(caller, "first words")  # the agent's echo of the words plays from now on
            resume = await caller.request_reconnection()
            assert resume["sessionId"] == caller.session_id
            await caller.close()  # the network drops while the agent speaks
            await asyncio.sleep(0.5)  # the outage lasts half a second (not a wait for a condition)
            again = await VoiceCaller.connect(b.base, tok, agent_id="agt_echo", session_id=caller.session_id)
            assert again.session["resumed"] is True
            assert again.session_id == caller.session_id and again.conversation_id == caller.conversation_id
            # every agent frame published before the resume reaches the caller (but what was in flight at the drop)
            published = await agent_bytes(redis_url, caller.conversation_id)
            await eventually(lambda: len(caller.agent_audio()) + len(again.agent_audio()) >= published - IN_FLIGHT,
                             5, "the agent audio queued during the drop")
            # the transcript continues on B
            await exchange(again, "second words")
            seqs = [t["seq"] for t in caller.final_turns() + again.final_turns()]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
            ended = await again.end("user_ended")
            assert ended["status"] == "completed" and ended["sessionId"] == caller.session_id
            await check_rest(b.base, redis_url, caller.conversation_id, "completed")
            # B recorded the rest of the call (from the audiolog's last minute on: here, all of it)
            deadline = asyncio.get_running_loop().time() + scaled(15)
            while (await rest(b.base, caller.conversation_id + "/recording")).status_code != 200:
                assert asyncio.get_running_loop().time() < deadline, "no recording on B"
                await asyncio.sleep(0.1)
        finally:
            await caller.close()
            if again is not None:
                await again.close()

    with cluster(redis_url) as (a, b):
        asyncio.run(main(a, b))
        assert "resumed on" in b.log() and "dropping it here" in a.log(), a.log()[-3000:] + b.log()[-3000:]
        assert "Traceback" not in a.log() + b.log(), a.log()[-3000:] + b.log()[-3000:]


def test_sigterm_drain_lets_the_caller_resume_on_another_node(redis_url: str) -> None:
    async def main(a: HubProcess, b: HubProcess) -> None:
        tok = await token(a.base, ["voice:session"])
        caller = await VoiceCaller.connect(a.base, tok, agent_id="agt_echo", metadata=SCRIPT)
        again: VoiceCaller | None = None
        try:
            await exchange(caller, "first words")
            a.signal(signal.SIGTERM)  # no RequestReconnectionAsync: the drain grants the window itself
            await wait_for(caller.hub.closed.wait(), 10)
            assert caller.hub.allow_reconnect is True
            again = await VoiceCaller.connect(b.base, tok, agent_id="agt_echo", session_id=caller.session_id)
            assert again.session["resumed"] is True and again.conversation_id == caller.conversation_id
            await exchange(again, "second words")
            assert await asyncio.to_thread(a.wait, 15) in (0, -signal.SIGTERM)
            ended = await again.end("user_ended")
            assert ended["status"] == "completed"
            conversation = await check_rest(b.base, redis_url, caller.conversation_id, "completed")
            assert conversation["status"] == "completed"
        finally:
            await caller.close()
            if again is not None:
                await again.close()

    with cluster(redis_url) as (a, b):
        asyncio.run(main(a, b))
        assert "handed off" in a.log() and "Traceback" not in a.log() + b.log(), a.log()[-3000:]


def test_sigkill_a_caller_back_in_time_resumes_and_a_lost_one_is_abandoned(redis_url: str) -> None:
    async def main(a: HubProcess, b: HubProcess) -> None:
        tok = await token(a.base, ["voice:session"])
        back = await VoiceCaller.connect(a.base, tok, agent_id="agt_echo", metadata=SCRIPT)
        lost = await VoiceCaller.connect(a.base, tok, agent_id="agt_echo", metadata=SCRIPT)
        again: VoiceCaller | None = None
        try:
            await asyncio.gather(exchange(back, "first words"), exchange(lost, "first words"))
            await back.request_reconnection()
            a.signal(signal.SIGKILL)
            await asyncio.to_thread(a.wait, 10)
            # the pipeline goes on while no node owns the sessions: the sweep (or the resume) stores this turn
            await pipeline_turn(redis_url, lost.conversation_id, "said while no node listened")
            await wait_for(back.hub.closed.wait(), 10)
            again = await VoiceCaller.connect(b.base, tok, agent_id="agt_echo", session_id=back.session_id)
            assert again.session["resumed"] is True and again.conversation_id == back.conversation_id
            await exchange(again, "second words")
            await again.end("user_ended")
            await check_rest(b.base, redis_url, back.conversation_id, "completed")
            # nobody resumes `lost`: once A's lease lapsed (and its grace), B's sweep ends it
            await check_rest(b.base, redis_url, lost.conversation_id, "abandoned")
            turns = (await rest(b.base, lost.conversation_id + "/transcript")).json()["turns"]
            assert [t["text"] for t in turns][-1] == "said while no node listened" and len(turns) == 3
        finally:
            for caller in (back, lost, again):
                if caller is not None:
                    await caller.close()

    with cluster(redis_url) as (a, b):
        asyncio.run(main(a, b))
        assert "by the sweep of" in b.log(), b.log()[-3000:]
