"""Supervisor actions on the memory broker and on Redis: Whisper reaches the pipeline, Barge is exclusive (the
second supervisor is told who holds it), only the holder's SendSupervisorAudio reaches the caller, a holder who
leaves gives the call back, EndConversation sends Control then ConversationEnded."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from hub.client.signalr import HubError
from hub.client.voice import audio_bytes
from tests.broker_rig import KINDS
from tests.support.timing import eventually, scaled
from tests.voice_rig import backend_url, open_call, open_monitor, publisher, voice_hub


@pytest.mark.parametrize("kind", KINDS)
def test_whisper_barge_supervisor_audio_release(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(backend_url(kind, request), agent="none", tmp_path=tmp_path) as rig:
            caller = await open_call(rig)
            cid = caller.conversation_id
            pipeline: list[dict[str, Any]] = []
            control = publisher(rig, cid).subscribe_control(pipeline.append)
            await control.ready()
            boss = await open_monitor(rig, subject="usr_boss")
            other = await open_monitor(rig, subject="usr_other", msgpack=True)
            await boss.subscribe(cid)
            await other.subscribe(cid)

            await boss.whisper(cid, "offer the discount")
            await eventually(lambda: any(m["type"] == "whisper" for m in pipeline), 5, "whisper at the pipeline")
            whisper = next(m for m in pipeline if m["type"] == "whisper")
            assert whisper["text"] == "offer the discount" and whisper["by"] == "usr_boss"

            await boss.barge(cid)
            await boss.barge(cid)  # the holder may ask again
            with pytest.raises(HubError, match="already barged by usr_boss"):
                await other.barge(cid)
            with pytest.raises(HubError, match="Only the barge holder"):
                await other.send_supervisor_audio(cid, b"\x00\x01" * 320)
            t = np.arange(320) / 16000
            tone = (np.sin(2 * np.pi * 400 * t) * 8000).astype("<i2").tobytes()
            received = len(caller.log.of("AudioReceived"))
            await boss.send_supervisor_audio(cid, tone)
            await eventually(lambda: len(caller.log.of("AudioReceived")) > received, 5, "supervisor audio at the caller")
            played = audio_bytes(caller.log.of("AudioReceived")[received])
            assert len(played) == 960  # 20 ms at 24 kHz
            assert np.abs(np.frombuffer(played, "<i2")).max() > 2000
            assert any(m["type"] == "supervisor_audio" for m in pipeline)
            await boss.release_barge(cid)
            with pytest.raises(HubError, match="does not hold the barge"):
                await boss.release_barge(cid)

            await other.barge(cid)  # free again
            await other.close()  # a holder who leaves gives the call back
            await eventually(lambda: [c["action"] for c in boss.log.of("Control")][-1:] == ["release"], 5, "release")
            await boss.barge(cid)
            await boss.release_barge(cid)
            actions = [(c["action"], c["by"]) for c in boss.log.of("Control")]
            assert actions == [("whisper", "usr_boss"), ("barge", "usr_boss"), ("release", "usr_boss"),
                               ("barge", "usr_other"), ("release", "usr_other"), ("barge", "usr_boss"),
                               ("release", "usr_boss")]
            seqs = [c["seq"] for c in boss.log.of("Control")]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
            control.close()
            await boss.close()
            await caller.close()

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_end_conversation(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(backend_url(kind, request), agent="none", tmp_path=tmp_path) as rig:
            caller = await open_call(rig)
            cid = caller.conversation_id
            monitor = await open_monitor(rig, subject="usr_boss")
            await monitor.subscribe(cid)
            watcher = await open_monitor(rig, subject="usr_watch", scopes=frozenset({"monitor:read"}))
            await watcher.subscribe_all({}, {"transcript": False})
            await monitor.end_conversation(cid, "policy_violation")
            ended = await monitor.wait_for("ConversationEnded", seconds=scaled(5))
            control = monitor.log.of("Control")
            assert [c["action"] for c in control] == ["end"] and control[0]["seq"] < ended["seq"]
            assert ended["status"] == "completed" and ended["reason"] == "policy_violation"
            assert set(ended) == {"conversationId", "status", "reason", "endedAt", "durationSeconds", "seq"}
            names = [n for n, _ in monitor.log.events if n in ("Control", "ConversationEnded")]
            assert names == ["Control", "ConversationEnded"]
            session_end = await caller.wait_for("SessionEnded", seconds=scaled(5))
            assert session_end["reason"] == "policy_violation"
            await watcher.wait_for("ConversationEnded", lambda e: e["conversationId"] == cid, scaled(5))
            stored = await rig.runtime.store.get_conversation("ten_default", cid)
            assert stored["status"] == "completed"
            with pytest.raises(HubError, match="not in progress"):
                await monitor.end_conversation(cid, "again")
            for client in (monitor, watcher, caller):
                await client.close()

    asyncio.run(main())
