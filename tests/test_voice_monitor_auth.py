"""Authorization and bad input in monitor mode: scopes per method, tenant isolation (another tenant's id is an
unknown id), tokens restricted to one conversation, and bad arguments that get an error while the connection
keeps working."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hub.client.signalr import HubClient, HubError, NegotiateRefused
from tests.broker_rig import KINDS
from tests.support.timing import scaled
from tests.voice_rig import backend_url, open_call, open_monitor, publisher, voice_hub

CONTROL_CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("Whisper", ("hint",)), ("Barge", ()), ("ReleaseBarge", ()), ("SendSupervisorAudio", ("AAAA",)),
    ("EndConversation", ("done",)),
]


async def error_of(monitor: Any, method: str, *args: Any) -> str:
    with pytest.raises(HubError) as caught:
        await monitor.hub.invoke(method, *args)
    return str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_scopes_per_method(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(backend_url(kind, request), agent="none", tmp_path=tmp_path) as rig:
            caller = await open_call(rig)
            cid = caller.conversation_id
            reader = await open_monitor(rig, scopes=frozenset({"monitor:read"}))
            for method, args in CONTROL_CALLS:
                assert await error_of(reader, method, cid, *args) == \
                    f"Failed to invoke '{method}' because user is unauthorized"
            assert await error_of(reader, "whisper", cid, "x") == "Failed to invoke 'whisper' because user is unauthorized"
            assert (await reader.subscribe(cid))["conversation"]["id"] == cid  # the connection goes on
            # the mode's scope is checked at connect: 403 without monitor:read, 401 for an API key
            with pytest.raises(NegotiateRefused) as refused:
                await open_monitor(rig, scopes=frozenset({"voice:session", "monitor:listen"}))
            assert refused.value.status == 403
            with pytest.raises(NegotiateRefused) as refused:
                await HubClient.connect(rig.base + "/hubs/voice", token="vsnp_live_notajwt")
            assert refused.value.status == 401
            await reader.close()
            await caller.close()

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_tenant_isolation(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(backend_url(kind, request), agent="none", tmp_path=tmp_path) as rig:
            other = await open_monitor(rig, tenant="ten_other")
            await other.subscribe_all({})
            ours = await open_call(rig)
            cid = ours.conversation_id
            await publisher(rig, cid).send_transcript("user", "secret", is_final=True, start_time=0, end_time=1)
            theirs = await open_call(rig, tenant="ten_other")
            await other.wait_for("ConversationStarted", seconds=scaled(5))
            assert [c["id"] for c in await other.list_conversations()] == [theirs.conversation_id]
            unknown = "conv_01HXDEF456GHIJKLMNOPQRSTUV"
            for method, args in [("Subscribe", ()), ("GetPresence", ()), ("UpdateSubscription", ({"audio": "none"},)),
                                 *CONTROL_CALLS]:
                mine = await error_of(other, method, cid, *args)
                assert mine.replace(cid, unknown) == await error_of(other, method, unknown, *args), method
            await ours.end("user_ended")
            await asyncio.sleep(scaled(0.2))
            seen = {p.get("conversationId") for _, p in other.log.events if isinstance(p, dict)}
            assert seen == {theirs.conversation_id}
            for client in (other, theirs):
                await client.close()

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_token_restricted_to_one_conversation(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(backend_url(kind, request), agent="none", tmp_path=tmp_path) as rig:
            allowed = await open_call(rig)
            monitor = await open_monitor(rig, conversation_id=allowed.conversation_id)
            await monitor.subscribe_all({})
            forbidden = await open_call(rig)
            assert [c["id"] for c in await monitor.list_conversations()] == [allowed.conversation_id]
            assert "restricted to another conversation" in await error_of(monitor, "Subscribe", forbidden.conversation_id)
            assert "restricted" in await error_of(monitor, "Whisper", forbidden.conversation_id, "x")
            snapshot = await monitor.subscribe(allowed.conversation_id)
            assert snapshot["conversation"]["id"] == allowed.conversation_id
            await forbidden.end("user_ended")
            await allowed.end("user_ended")
            await monitor.wait_for("ConversationEnded", seconds=scaled(5))
            seen = {p.get("conversationId") for _, p in monitor.log.events if isinstance(p, dict)}
            assert seen == {allowed.conversation_id}
            await monitor.close()

    asyncio.run(main())


BAD_MONITOR_CALLS: list[tuple[str, tuple[Any, ...], str]] = [
    ("Subscribe", ("conv_01HXDEF456GHIJKLMNOPQRSTUV",), "was not found"),
    ("Subscribe", ("not-an-id",), "conversationId must be a conversation id"),
    ("Subscribe", (42,), "conversationId must be a conversation id"),
    ("Subscribe", ("{cid}", {"audio": "loud"}), "options.audio must be one of"),
    ("Subscribe", ("{cid}", {"sampleRate": 44100}), "options.sampleRate must be"),
    ("Subscribe", ("{cid}", {"encoding": "opus"}), "options.encoding must be one of"),
    ("Subscribe", ("{cid}", {"fromSeq": -1}), "options.fromSeq must be"),
    ("Subscribe", ("{cid}", {"volume": 3}), "Unknown option"),
    ("Subscribe", ("{cid}", "all"), "options must be an object"),
    ("ListConversations", ({"colour": "red"},), "Unknown filter field"),
    ("ListConversations", ("phone",), "filter must be an object"),
    ("SubscribeAll", ({}, {"audio": "mixed"}), "never carries audio"),
    ("GetPresence", ("conv_01HXDEF456GHIJKLMNOPQRSTUV",), "was not found"),
    ("Whisper", ("{cid}", ""), "Whisper text must be"),
    ("EndConversation", ("{cid}", 7), "reason must be"),
    ("SendSupervisorAudio", ("{cid}", "!!!not base64!!!"), "base64"),
    ("SendSupervisorAudio", ("{cid}", "AAEC"), "even number"),  # 3 bytes: not whole PCM16 samples
    ("Subscribe", (), "Failed to invoke 'Subscribe' due to an error on the server."),
]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_gets_an_error_and_the_connection_keeps_working(kind: str, request: pytest.FixtureRequest,
                                                                   tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(backend_url(kind, request), agent="none", tmp_path=tmp_path) as rig:
            caller = await open_call(rig)
            cid = caller.conversation_id
            monitor = await open_monitor(rig)
            await monitor.subscribe(cid)
            await monitor.barge(cid)  # so the supervisor-audio checks reach the payload
            for method, args, expected in BAD_MONITOR_CALLS:
                real = tuple(a.replace("{cid}", cid) if isinstance(a, str) else a for a in args)
                text = await error_of(monitor, method, *real)
                assert expected in text, (method, args, text)
            assert [c["id"] for c in await monitor.list_conversations()] == [cid]
            # caller side: bad DTMF is a Completion error, bad audio an Error event; the session goes on
            with pytest.raises(HubError, match="DTMF digit must be one of"):
                await caller.send_dtmf("A")
            await caller.hub.send("SendAudioAsync", "%%% not base64")
            bad_b64 = await caller.wait_for("Error", seconds=scaled(5))
            await caller.hub.send("SendAudioAsync", "AAEC")
            odd = await caller.wait_for("Error", lambda e: e is not bad_b64, scaled(5))
            assert bad_b64["code"] == odd["code"] == "audio_invalid"
            await caller.send_dtmf("5")
            dtmf = await monitor.wait_for("Dtmf", seconds=scaled(5))
            assert dtmf["digit"] == "5" and dtmf["conversationId"] == cid
            assert not monitor.hub.closed.is_set() and not caller.hub.closed.is_set()
            await monitor.close()
            await caller.close()

    asyncio.run(main())
