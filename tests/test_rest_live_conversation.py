"""A simulated caller through VoiceHub, read back through the REST API: listed while in progress, then
completed with its transcript, messages, costs, analysis (from the agent pipeline) and a recording whose
MP3 lasts as long as the call. Memory components and a real Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from hub.simulate.callers import simulate_call
from tests.mp3_frames import mp3_duration
from tests.support.rest_poll import get_when
from tests.support.timing import wait_for
from tests.voice_rig import voice_hub

CALL_SECONDS = 4.0


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_simulated_call_is_visible_in_rest_live_and_after(kind: str, request: pytest.FixtureRequest,
                                                             tmp_path: Path) -> None:
    redis_url = request.getfixturevalue("redis_url") if kind == "redis" else None

    async def main() -> None:
        async with voice_hub(redis_url, tmp_path=tmp_path) as rig:
            headers = {"Authorization": f"Bearer {rig.token()}"}
            async with httpx.AsyncClient(base_url=rig.base, headers=headers, timeout=10) as http:
                call = asyncio.get_running_loop().create_task(simulate_call(
                    rig.base, rig.token({"voice:session"}), duration=CALL_SECONDS, agent_id="agt_rest",
                    metadata={"channel": "phone"}, use_espeak=False))
                live = await get_when(http, "/api/v1/conversations?status=in_progress&agentId=agt_rest",
                                  lambda body: body["total"] == 1)
                conversation = live["data"][0]
                assert conversation["status"] == "in_progress" and conversation["channel"] == "phone"
                conv_id = conversation["id"]
                await get_when(http, f"/api/v1/conversations/{conv_id}", lambda body: body["durationSeconds"] > 0)

                result = await wait_for(call, CALL_SECONDS + 20)
                assert result.error is None and result.conversation_id == conv_id and result.ended is not None

                done = await get_when(http, f"/api/v1/conversations/{conv_id}", lambda body: body["status"] == "completed")
                assert done["durationSeconds"] >= CALL_SECONDS * 0.8
                transcript = await get_when(http, f"/api/v1/conversations/{conv_id}/transcript",
                                        lambda body: any(t["speaker"] == "agent" for t in body["turns"]))
                user_turns = [t for t in transcript["turns"] if t["speaker"] == "user"]
                assert user_turns and user_turns[0]["words"], transcript
                messages = (await http.get(f"/api/v1/conversations/{conv_id}/messages")).json()
                assert {m["role"] for m in messages["messages"]} >= {"user", "agent"}, messages
                costs = await get_when(http, f"/api/v1/conversations/{conv_id}/costs", lambda body: body["total"] > 0)
                assert costs["currency"] == "USD"
                analysis = await get_when(http, f"/api/v1/conversations/{conv_id}/analysis",
                                      lambda body: bool(body.get("summary")))
                assert analysis["conversationId"] == conv_id
                recording = await get_when(http, f"/api/v1/conversations/{conv_id}/recording", lambda body: "url" in body,
                                       seconds=20)
                mp3 = await http.get(recording["url"])
                assert mp3.status_code == 200 and mp3.headers["content-type"].startswith("audio/mpeg")
                assert mp3_duration(mp3.content) == pytest.approx(done["durationSeconds"], abs=1.0)

    asyncio.run(main())
