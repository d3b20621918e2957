"""Caller mode end to end: the real app under uvicorn, the in-process echo agent, the project's Python client,
on the memory broker and on a real Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.client.signalr import HubError
from hub.client.voice import VoiceCaller, audio_bytes
from hub.simulate.speech import SILENCE_FRAME, frames, synthetic_phrase
from tests.support.rest_poll import get_when
from tests.support.timing import scaled, wait_for
from tests.voice_rig import VoiceRig, voice_hub


async def speak(caller: VoiceCaller, pcm: bytes, pause_frames: int = 45) -> None:
    """Real-time paced caller audio followed by a pause (the echo agent answers in pauses)."""
    for frame in frames(pcm) + [SILENCE_FRAME] * pause_frames:
        await caller.send_audio(frame)
        await asyncio.sleep(0.02)


async def a_call(rig: VoiceRig, *, msgpack: bool) -> tuple[VoiceCaller, dict[str, Any]]:
    caller = await VoiceCaller.connect(rig.base, rig.token({"voice:session"}), agent_id="agt_test", msgpack=msgpack,
                                       metadata={"channel": "phone", "campaign": "spring"})
    await speak(caller, synthetic_phrase(6, seed=1))
    user_final = await caller.wait_for("Transcription", lambda t: t["role"] == "user" and t["isFinal"], scaled(10))
    await caller.wait_for("Transcription", lambda t: t["role"] == "agent" and t["isFinal"], scaled(15))
    return caller, user_final


@pytest.mark.parametrize("msgpack", [False, True], ids=["json", "msgpack"])
def test_caller_session_on_memory(msgpack: bool, tmp_path: Path) -> None:
    async def main() -> None:
        async with voice_hub(tmp_path=tmp_path) as rig:
            caller, user_final = await a_call(rig, msgpack=msgpack)
            session = caller.session
            assert session["conversationId"].startswith("conv_") and session["agentId"] == "agt_test"
            assert session["resumed"] is False
            assert session["inputFormat"] == {"encoding": "pcm_s16le", "sampleRate": 16000, "channels": 1}
            assert session["outputFormat"] == {"encoding": "pcm_s16le", "sampleRate": 24000, "channels": 1}
            # partials come first with the same turnId, then one final with word timings and a seq
            turns = caller.log.of("Transcription")
            same = [t for t in turns if t["turnId"] == user_final["turnId"]]
            assert same[-1]["isFinal"] and all(not t["isFinal"] for t in same[:-1])
            assert user_final["endTime"] > user_final["startTime"] >= 0
            assert user_final["words"] and {"word", "startTime", "endTime", "confidence"} <= set(user_final["words"][0])
            seqs = [t["seq"] for t in turns]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
            # agent audio is PCM16 24 kHz: bytes over MessagePack, base64 over JSON
            raw = caller.log.of("AudioReceived")
            assert raw and all(isinstance(r, bytes if msgpack else str) for r in raw)
            assert len(caller.agent_audio()) > 24000 * 2 // 2  # more than half a second of agent speech
            assert len(audio_bytes(raw[0])) % 2 == 0
            await caller.send_dtmf("7")
            with pytest.raises(HubError, match="DTMF digit must be one of"):
                await caller.send_dtmf("x")
            await caller.send_audio(b"\x01\x02\x03")  # odd length: not whole PCM16 samples
            error = await caller.wait_for("Error", seconds=scaled(5))
            assert error["code"] == "audio_invalid"
            assert not caller.hub.closed.is_set()  # the session goes on
            ended = await caller.end("user_ended")
            assert ended["status"] == "completed" and ended["reason"] == "user_ended"
            assert ended["conversationId"] == caller.conversation_id and ended["durationSeconds"] >= 0
            await wait_for(caller.hub.closed.wait(), 5)
            await check_rest(rig, caller.conversation_id, user_final)

    asyncio.run(main())


async def check_rest(rig: VoiceRig, conversation_id: str, user_final: dict[str, Any]) -> None:
    """The REST API reads the same store: completed, with the transcript and a recording of the call."""
    headers = {"Authorization": f"Bearer {rig.token()}"}
    async with httpx.AsyncClient(base_url=rig.base, headers=headers, timeout=10) as http:
        conversation = (await http.get(f"/api/v1/conversations/{conversation_id}")).json()
        assert conversation["status"] == "completed" and conversation["channel"] == "phone"
        assert conversation["metadata"].get("campaign") == "spring"
        transcript = (await http.get(f"/api/v1/conversations/{conversation_id}/transcript")).json()
        texts = [turn.get("text") for turn in transcript.get("turns", transcript.get("data", []))]
        assert user_final["text"] in texts, transcript

        recording = await get_when(http, f"/api/v1/conversations/{conversation_id}/recording")
        mp3 = await http.get(recording["url"])
        assert mp3.status_code == 200 and mp3.headers["content-type"].startswith("audio/mpeg")
        assert len(mp3.content) > 1000


def test_caller_session_on_redis(redis_url: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with voice_hub(redis_url, tmp_path=tmp_path) as rig:
            caller, user_final = await a_call(rig, msgpack=True)
            ended = await caller.end("transfer_complete")
            assert ended["reason"] == "transfer_complete"
            await check_rest(rig, caller.conversation_id, user_final)

    asyncio.run(main())


def test_resume_a_session_after_a_dropped_connection(tmp_path: Path) -> None:
    async def main() -> None:
        async with voice_hub(tmp_path=tmp_path) as rig:
            token = rig.token({"voice:session"})
            caller = await VoiceCaller.connect(rig.base, token, agent_id="agt_test")
            resume = await caller.request_reconnection()
            assert resume["sessionId"] == caller.session_id and resume["resumeBefore"].endswith("Z")
            await caller.hub.close()  # the network drops
            again = await VoiceCaller.connect(rig.base, token, agent_id="agt_test", session_id=caller.session_id)
            assert again.session["resumed"] is True and again.conversation_id == caller.conversation_id
            await again.end("user_ended")
            with pytest.raises(HubError, match="unknown or has expired"):
                await VoiceCaller.connect(rig.base, token, agent_id="agt_test", session_id=caller.session_id)

    asyncio.run(main())


def test_a_dropped_caller_without_resume_abandons_the_conversation(tmp_path: Path) -> None:
    async def main() -> None:
        async with voice_hub(tmp_path=tmp_path) as rig:
            caller = await VoiceCaller.connect(rig.base, rig.token({"voice:session"}), agent_id="agt_test")
            await caller.hub.close()

            async def abandoned() -> None:
                while True:
                    record = await rig.runtime.store.get_conversation("ten_default", caller.conversation_id)
                    if record["status"] == "abandoned":
                        return
                    await asyncio.sleep(0.02)

            await wait_for(abandoned(), 5)

    asyncio.run(main())
