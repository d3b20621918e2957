"""Takeover details of caller sessions across nodes (docs/voicehub.md "Sessions across nodes"), with two hub apps in
one process on one real Redis (each its own node id) and a pipeline's Publisher: exactly which agent audio a resumed
session delivers, the old owner's copy, tenant and expiry checks, turns published while no node owned the session,
and the sweep ending a session nobody resumed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from hub.broker.sessions import SessionRecord
from hub.client.signalr import HubError
from hub.client.voice import VoiceCaller
from hub.publisher import FRAME_BYTES
from tests.support.timing import eventually, scaled, wait_for
from tests.voice_rig import VoiceRig, publisher, voice_hub

PREFIX = "vhresume"


@contextlib.asynccontextmanager
async def two_nodes(redis_url: str, tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[VoiceRig, VoiceRig]]:
    async with voice_hub(redis_url, agent="none", prefix=PREFIX, tmp_path=tmp_path / "a", **settings) as a, \
            voice_hub(redis_url, agent="none", prefix=PREFIX, tmp_path=tmp_path / "b", **settings) as b:
        assert a.runtime.voice.keeper.node_id != b.runtime.voice.keeper.node_id
        yield a, b


async def call(rig: VoiceRig, tenant: str = "ten_default") -> VoiceCaller:
    return await VoiceCaller.connect(rig.base, rig.token({"voice:session"}, tenant=tenant), agent_id="agt_test")


async def agent_frames(pub: Any, value: int, count: int) -> bytes:
    """`count` agent frames of one sample value, on the pipeline's (monotonic) agent timeline."""
    pcm = bytes([value, 0]) * (FRAME_BYTES // 2) * count
    await pub.send_agent_audio(pcm)
    return pcm


def test_resumed_session_gets_exactly_the_agent_audio_it_missed(redis_url: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with two_nodes(redis_url, tmp_path) as (a, b):
            caller = await call(a)
            pub = publisher(a, caller.conversation_id)
            heard = await agent_frames(pub, 1, 10)
            await eventually(lambda: caller.agent_audio() == heard, 5, "the first agent frames")
            await caller.request_reconnection()
            await caller.close()
            session = a.runtime.voice.sessions[caller.session_id]
            registry = a.runtime.voice.keeper.registry
            await eventually(lambda: session.connection is None, 5, "A to see the drop")

            await wait_for(record_where(registry, caller.session_id, lambda r: r.agent_ms == session.agent_ms), 5)
            missed = await agent_frames(pub, 2, 15)
            again = await call_resume(b, caller)
            await eventually(lambda: len(again.agent_audio()) >= len(missed), 5, "the missed agent audio")
            assert again.agent_audio() == missed  # nothing heard twice, nothing missing, in order
            assert caller.session_id not in a.runtime.voice.sessions  # A dropped its copy ...
            record = await a.runtime.store.get_conversation("ten_default", caller.conversation_id)
            assert record["status"] == "in_progress"  # ... without ending the call
            live = await agent_frames(pub, 3, 5)
            await eventually(lambda: again.agent_audio() == missed + live, 5, "live agent audio on B")
            ended = await again.end("user_ended")
            assert ended["status"] == "completed"
            await caller.close()

    asyncio.run(main())


async def record_where(registry: Any, session_id: str, predicate: Callable[[SessionRecord], bool]) -> None:
    """Until the session's registry record satisfies `predicate`."""
    while True:
        record = await registry.get(session_id)
        if record is not None and predicate(record):
            return
        await asyncio.sleep(0.02)


async def call_resume(rig: VoiceRig, caller: VoiceCaller, tenant: str = "ten_default") -> VoiceCaller:
    again = await VoiceCaller.connect(rig.base, rig.token({"voice:session"}, tenant=tenant), agent_id="agt_test",
                                      session_id=caller.session_id)
    assert again.session["resumed"] is True and again.conversation_id == caller.conversation_id
    return again


def test_resuming_elsewhere_closes_the_old_connection_and_refuses_strangers(redis_url: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with two_nodes(redis_url, tmp_path) as (a, b):
            caller = await call(a)
            with pytest.raises(HubError, match="unknown or has expired"):  # another tenant's session id
                await call_resume(b, caller, tenant="ten_other")
            with pytest.raises(HubError, match="unknown or has expired"):
                await VoiceCaller.connect(b.base, b.token({"voice:session"}), agent_id="agt_test",
                                          session_id="sess_01NOSUCHSESSION")
            again = await call_resume(b, caller)  # still connected on A: this resume wins
            await wait_for(caller.hub.closed.wait(), 5)
            assert "session resumed elsewhere" in (caller.hub.close_error or "")
            await again.end("user_ended")
            with pytest.raises(HubError, match="unknown or has expired"):
                await call_resume(a, caller)

    asyncio.run(main())


def test_turns_published_while_nobody_owns_the_session_reach_rest(redis_url: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with two_nodes(redis_url, tmp_path) as (a, b):
            caller = await call(a)
            pub = publisher(a, caller.conversation_id)
            await pub.send_transcript("user", "before the drain", is_final=True, start_time=0, end_time=1)
            session = a.runtime.voice.sessions[caller.session_id]
            a.runtime.voice.keeper.hand_off(session)  # what a drain does
            await caller.close()
            registry = a.runtime.voice.keeper.registry
            await wait_for(record_where(registry, caller.session_id, lambda r: r.owner == ""), 5)  # handed off
            await pub.send_transcript("agent", "while nobody owned it", is_final=True, start_time=1, end_time=2)
            again = await call_resume(b, caller)
            await pub.send_transcript("user", "after the resume", is_final=True, start_time=2, end_time=3)
            await again.wait_for("Transcription", lambda t: t["text"] == "after the resume", scaled(5))
            await again.end("user_ended")

            async def stored() -> list[str]:
                while True:
                    transcript = await b.runtime.store.get_transcript("ten_default", caller.conversation_id)
                    texts = [t["text"] for t in transcript["turns"]]
                    if len(texts) == 3:
                        return texts
                    await asyncio.sleep(0.05)

            assert await wait_for(stored(), 5) == ["before the drain", "while nobody owned it", "after the resume"]

    asyncio.run(main())


def test_a_handed_off_session_nobody_resumes_is_abandoned_by_a_sweep(redis_url: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with two_nodes(redis_url, tmp_path, resume_window=0.5, session_sweep_seconds=0.1) as (a, b):
            caller = await call(a)
            a.runtime.voice.keeper.hand_off(a.runtime.voice.sessions[caller.session_id])
            await caller.close()

            async def abandoned() -> dict[str, Any]:
                while True:
                    record = await b.runtime.store.get_conversation("ten_default", caller.conversation_id)
                    if record["status"] != "in_progress":
                        return dict(record)
                    await asyncio.sleep(0.05)

            record = await wait_for(abandoned(), 10)
            assert record["status"] == "abandoned"
            with pytest.raises(HubError, match="unknown or has expired"):
                await call_resume(b, caller)

    asyncio.run(main())
