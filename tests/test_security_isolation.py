"""Tenant isolation (issue 8, point 6) on two real hub nodes sharing Redis: tenant A's call on node 1, tenant B's on
node 2, and a tenant B monitor on node 1 next to A's call. Nothing of A reaches B through the hub (list, subscribe,
SubscribeAll, presence, control), the REST API (404 exactly like an unknown id) or the recording link; Redis keys of the
conversation store are namespaced by tenant; signed recording URLs cannot be replayed after expiry or for another file.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from hub.auth.keystore import RedisKeyStore
from hub.auth.principal import ALL_SCOPES
from hub.client.signalr import HubClient, HubError
from hub.client.voice import VoiceCaller
from tests.reliability_rig import BOOTSTRAP_KEY, SECRET, HubProcess, TurnPipeline, token
from tests.support.timing import eventually

TENANT_B = "ten_bravo"


def _recording_sig(path: str, expires: int) -> str:
    secret = hmac.new(SECRET.encode(), b"voicehub recordings", hashlib.sha256).hexdigest().encode()
    return hmac.new(secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def test_tenants_see_nothing_of_each_other_across_nodes(redis_url: str) -> None:
    async def main(one: HubProcess, two: HubProcess) -> None:
        redis = Redis.from_url(redis_url)
        try:
            key_b, _ = await RedisKeyStore(redis).create_key(TENANT_B, name="bravo", scopes=sorted(ALL_SCOPES))
        finally:
            await redis.aclose()
        token_a, token_b = await token(one.base), await token(two.base, key=key_b)
        caller_a = await VoiceCaller.connect(one.base, token_a, agent_id="agt_alpha")
        caller_b = await VoiceCaller.connect(two.base, token_b, agent_id="agt_bravo")
        a, b = caller_a.conversation_id, caller_b.conversation_id
        seen: list[tuple[str, Any]] = []

        def record(name: str) -> Any:
            return lambda arguments: seen.append((name, arguments[0]))

        names = ["ConversationStarted", "ConversationUpdated", "ConversationEnded", "TranscriptTurn", "Presence", "Gap"]
        monitor_b = await HubClient.connect(one.base + "/hubs/voice", token=token_b,
                                            handlers={n: record(n) for n in names})
        pipeline = TurnPipeline(redis_url, [a, b])
        try:
            listed = await monitor_b.invoke("ListConversations", {"status": None})
            assert [c["id"] for c in listed] == [b]
            for method, args in (("Subscribe", [a]), ("GetPresence", [a]), ("Whisper", [a, "hi"]), ("Barge", [a]),
                                 ("EndConversation", [a, "x"]), ("UpdateSubscription", [a, {}])):
                with pytest.raises(HubError) as refused:
                    await monitor_b.invoke(method, *args)
                unknown = "conv_01ZZZZZZZZZZZZZZZZZZZZZZZZ"
                with pytest.raises(HubError) as reference:
                    await monitor_b.invoke(method, *[unknown if x == a else x for x in args])
                assert str(refused.value) == str(reference.value).replace(unknown, a), method  # same as unknown
            await monitor_b.invoke("SubscribeAll", {}, {"partials": False})
            await pipeline.start()
            await eventually(lambda: sum(1 for n, p in seen if n == "TranscriptTurn") >= 5, 10, "B's own turns")
            for n in range(10):  # 1 s of caller audio: A's call has a recording
                await caller_a.send_audio(bytes([n]) * 3200)
            await caller_a.end("user_ended")
            await caller_b.end("user_ended")
            await pipeline.stop()
            await eventually(lambda: any(n == "ConversationEnded" for n, _ in seen), 10, "B's call to end")
            assert all(p.get("conversationId") == b for _, p in seen), [p for _, p in seen if p.get("conversationId") != b]

            async with httpx.AsyncClient(timeout=10) as http:
                as_b = {"Authorization": f"Bearer {key_b}"}
                for path in ("", "/messages", "/costs", "/transcript", "/analysis", "/recording"):
                    answer = await http.get(f"{two.base}/api/v1/conversations/{a}{path}", headers=as_b)
                    assert answer.status_code == 404 and answer.json()["type"].endswith("/not-found"), path
                for method, path, body in (("DELETE", "", None), ("POST", "/tags", {"tags": ["x"]}),
                                           ("PUT", "/outcome", {"outcome": "x"})):
                    answer = await http.request(method, f"{two.base}/api/v1/conversations/{a}{path}", headers=as_b,
                                                json=body)
                    assert answer.status_code == 404, (method, path)
                listed_rest = (await http.get(f"{two.base}/api/v1/conversations", headers=as_b)).json()["data"]
                assert [c["id"] for c in listed_rest] == [b]
                # A's recording, signed for A: the link works; replayed after expiry or for B's file it does not
                as_a = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}

                async def recording() -> bool:
                    return (await http.get(f"{one.base}/api/v1/conversations/{a}/recording", headers=as_a)).status_code == 200

                for _ in range(100):  # the MP3 is encoded once the call ended
                    if await recording():
                        break
                    await asyncio.sleep(0.1)
                link = (await http.get(f"{one.base}/api/v1/conversations/{a}/recording", headers=as_a)).json()["url"]
                assert (await http.get(link)).status_code == 200
                query = link.split("?", 1)[1]
                assert (await http.get(f"{one.base}/recordings/{b}.mp3?{query}")).status_code == 403  # other file
                past = int(time.time()) - 5
                path = f"/recordings/{a}.mp3"
                replay = await http.get(f"{one.base}{path}?expires={past}&sig={_recording_sig(path, past)}")
                assert replay.status_code == 403 and "expired" in replay.json()["type"]
                later = int(time.time()) + 3600
                forged = await http.get(f"{one.base}{path}?expires={later}&sig={_recording_sig(path, later - 1)}")
                assert forged.status_code == 403

            redis = Redis.from_url(redis_url)
            try:
                keys = [k.decode() async for k in redis.scan_iter("voicehub:store:*")]
            finally:
                await redis.aclose()
            for key in keys:
                if a in key and ":owner:" not in key:
                    assert ":t:ten_default:" in key, key
                if b in key and ":owner:" not in key:
                    assert f":t:{TENANT_B}:" in key, key
            assert any(a in k for k in keys) and any(b in k for k in keys)
        finally:
            await pipeline.stop()
            await monitor_b.close()
            await caller_a.close()
            await caller_b.close()

    with HubProcess(redis_url) as one, HubProcess(redis_url) as two:
        asyncio.run(main(one, two))
        assert "Traceback" not in one.log() + two.log()
