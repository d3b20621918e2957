"""ConversationStore behaviour, run on both the memory store and the Redis store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub.store.base import ConversationExists, ConversationStore
from hub.store.models import ConversationFilter
from tests.rest_support import SEED_ANALYSIS, SEED_COSTS, STORE_KINDS, T0, FakeClock, redis_url_for, run_with_store, turn


@pytest.fixture(params=STORE_KINDS)
def url(request: pytest.FixtureRequest) -> str | None:
    return redis_url_for(request.param, request)


def test_create_get_and_render_the_seed_object(url: str | None) -> None:
    async def body(store: ConversationStore, clock: FakeClock) -> None:
        conv = await store.create_conversation("ten_a", agent_id="agt_1", channel="phone", caller={"phoneNumber": "+1"},
                                               metadata={"customerId": "c1"})
        assert conv["id"].startswith("conv_") and len(conv["id"]) == 5 + 26
        assert set(conv) == {"id", "agentId", "agentName", "channel", "status", "direction", "startedAt", "endedAt",
                             "durationSeconds", "caller", "metadata", "cost", "analysis", "recording", "tags", "outcome"}
        assert conv["status"] == "in_progress" and conv["startedAt"] == "2025-06-16T14:22:00Z" and conv["endedAt"] is None
        assert conv["caller"] == {"phoneNumber": "+1", "country": None}
        assert conv["recording"] == {"available": False, "durationSeconds": None, "format": "mp3", "expiresAt": None}
        clock.advance(12.5)
        again = await store.get_conversation("ten_a", conv["id"])
        assert again is not None and again["durationSeconds"] == 12
        with pytest.raises(ConversationExists):
            await store.create_conversation("ten_b", agent_id="agt_1", conversation_id=conv["id"])
        with pytest.raises(ValueError):
            await store.create_conversation("ten_a", agent_id="agt_1", channel="pigeon")

    run_with_store(url, body)


def test_another_tenant_never_sees_or_changes_a_conversation(url: str | None) -> None:
    async def body(store: ConversationStore, clock: FakeClock) -> None:
        cid = (await store.create_conversation("ten_a", agent_id="agt_1"))["id"]
        assert await store.get_conversation("ten_b", cid) is None
        assert await store.update_conversation("ten_b", cid, {"outcome": "x"}) is None
        assert await store.add_tags("ten_b", cid, ["x"]) is None
        assert await store.end_conversation("ten_b", cid, status="completed", reason="r") is None
        await store.add_turn("ten_b", cid, turn("turn_1", "user", "hi", 0, 1))
        await store.set_costs("ten_b", cid, SEED_COSTS)
        await store.set_analysis("ten_b", cid, SEED_ANALYSIS)
        await store.set_recording("ten_b", cid, path="x.mp3", duration_seconds=3)
        for getter in (store.get_transcript, store.get_messages, store.get_costs, store.get_analysis, store.get_recording_info):
            assert await getter("ten_b", cid) is None
        assert await store.list_conversations("ten_b", ConversationFilter(), 1, 20, "startedAt", "desc") == ([], 0)
        assert not await store.delete_conversation("ten_b", cid)
        conv = await store.get_conversation("ten_a", cid)
        assert conv is not None and conv["tags"] == [] and conv["outcome"] is None and conv["cost"]["totalUsd"] == 0
        assert (await store.get_transcript("ten_a", cid))["turns"] == []  # type: ignore[index]
        assert await store.tenant_of(cid) == "ten_a"

    run_with_store(url, body)


def test_tags_merge_dedupe_and_patch_validation(url: str | None) -> None:
    async def body(store: ConversationStore, clock: FakeClock) -> None:
        cid = (await store.create_conversation("ten_a", agent_id="agt_1"))["id"]
        assert (await store.add_tags("ten_a", cid, ["billing", "vip"]))["tags"] == ["billing", "vip"]  # type: ignore[index]
        assert (await store.add_tags("ten_a", cid, ["vip", "new", "new"]))["tags"] == ["billing", "vip", "new"]  # type: ignore[index]
        with pytest.raises(ValueError):
            await store.update_conversation("ten_a", cid, {"outcome": "resolved", "bogus": 1})
        with pytest.raises(ValueError):
            await store.update_conversation("ten_a", cid, {"status": "sleeping"})
        conv = await store.update_conversation("ten_a", cid, {"outcome": "resolved", "notes": "ok"})
        assert conv is not None and conv["outcome"] == "resolved" and "notes" not in conv
        hits, total = await store.list_conversations("ten_a", ConversationFilter(tags=("vip", "new")), 1, 20, "startedAt", "desc")
        assert total == 1 and hits[0]["id"] == cid
        hits, total = await store.list_conversations("ten_a", ConversationFilter(outcome="resolved"), 1, 20, "startedAt", "desc")
        assert total == 1

    run_with_store(url, body)


def test_end_transcript_messages_costs_analysis_recording(url: str | None) -> None:
    async def body(store: ConversationStore, clock: FakeClock) -> None:
        cid = (await store.create_conversation("ten_a", agent_id="agt_1", metadata={"language": "de-DE"}))["id"]
        await store.add_turn("ten_a", cid, turn("turn_02", "user", "Hi, a question.", 3.8, 6.4))
        await store.add_turn("ten_a", cid, turn("turn_01", "agent", "Hello!", 0.0, 3.2,
                                                words=[{"word": "Hello!", "startTime": 0.0, "endTime": 0.38, "confidence": 0.99}]))
        await store.add_turn("ten_a", cid, turn("turn_02", "user", "Hi, I have a question.", 3.8, 6.4))  # redelivered
        with pytest.raises(ValueError):
            await store.add_turn("ten_a", cid, turn("turn_03", "robot", "beep", 7, 8))
        ended = await store.end_conversation("ten_a", cid, status="completed", reason="user_ended", ended_at=T0 + timedelta(seconds=227))
        assert ended is not None and ended["status"] == "completed" and ended["durationSeconds"] == 227
        assert ended["endedAt"] == "2025-06-16T14:25:47Z"
        with pytest.raises(ValueError):
            await store.end_conversation("ten_a", cid, status="in_progress", reason="x")
        transcript = await store.get_transcript("ten_a", cid)
        assert transcript is not None and transcript["language"] == "de-DE" and transcript["durationSeconds"] == 227
        assert [t["id"] for t in transcript["turns"]] == ["turn_01", "turn_02"]
        assert transcript["turns"][1] == {"id": "turn_02", "speaker": "user", "text": "Hi, I have a question.",
                                          "startTime": 3.8, "endTime": 6.4, "confidence": 0.9, "words": []}
        assert transcript["turns"][0]["words"][0]["word"] == "Hello!"
        messages = await store.get_messages("ten_a", cid)
        assert messages is not None and messages["messages"][1] == {
            "id": "msg_02", "role": "user", "content": "Hi, I have a question.", "timestamp": "2025-06-16T14:22:03.800Z",
            "durationMs": 2600}
        assert (await store.get_costs("ten_a", cid)) == {"conversationId": cid, "currency": "USD", "total": 0.0, "breakdown": {}}
        await store.set_costs("ten_a", cid, SEED_COSTS)
        costs = await store.get_costs("ten_a", cid)
        assert costs == {"conversationId": cid, **SEED_COSTS}
        conv = await store.get_conversation("ten_a", cid)
        assert conv is not None and conv["cost"] == {"totalUsd": 0.094, "llmUsd": 0.041, "ttsUsd": 0.028, "sttUsd": 0.018,
                                                     "telephonyUsd": 0.007}
        assert await store.get_analysis("ten_a", cid) is None
        await store.set_analysis("ten_a", cid, SEED_ANALYSIS)
        assert await store.get_analysis("ten_a", cid) == {"conversationId": cid, **SEED_ANALYSIS}
        conv = await store.get_conversation("ten_a", cid)
        assert conv is not None and conv["analysis"] == {"sentiment": "positive", "sentimentScore": 0.81, "intent": "billing_inquiry",
                                                         "summary": "Customer asked about a charge.",
                                                         "customFields": {"resolution_status": "resolved"}}
        await store.set_recording("ten_a", cid, path="recordings/ten_a/x.mp3", duration_seconds=227.4)
        info = await store.get_recording_info("ten_a", cid)
        assert info is not None and info["path"] == "recordings/ten_a/x.mp3"
        conv = await store.get_conversation("ten_a", cid)
        assert conv is not None and conv["recording"] == {"available": True, "durationSeconds": 227, "format": "mp3",
                                                          "expiresAt": "2025-09-14T14:22:00Z"}

    run_with_store(url, body)


def test_delete_removes_everything(url: str | None) -> None:
    async def body(store: ConversationStore, clock: FakeClock) -> None:
        cid = (await store.create_conversation("ten_a", agent_id="agt_1"))["id"]
        keep = (await store.create_conversation("ten_a", agent_id="agt_1"))["id"]
        await store.add_tags("ten_a", cid, ["x"])
        await store.add_turn("ten_a", cid, turn("turn_1", "user", "hi", 0, 1))
        await store.set_costs("ten_a", cid, SEED_COSTS)
        await store.set_analysis("ten_a", cid, SEED_ANALYSIS)
        assert await store.delete_conversation("ten_a", cid)
        assert not await store.delete_conversation("ten_a", cid)
        for getter in (store.get_conversation, store.get_transcript, store.get_messages, store.get_costs, store.get_analysis,
                       store.get_recording_info):
            assert await getter("ten_a", cid) is None
        assert await store.tenant_of(cid) is None
        for f in (ConversationFilter(), ConversationFilter(tags=("x",)), ConversationFilter(agent_id="agt_1")):
            hits, total = await store.list_conversations("ten_a", f, 1, 20, "startedAt", "desc")
            assert [h["id"] for h in hits] == ([keep] if not f.tags else []) and total == len(hits)
        again = await store.create_conversation("ten_b", agent_id="agt_1", conversation_id=cid)  # the id is free again
        assert again["id"] == cid and (await store.get_transcript("ten_b", cid))["turns"] == []  # type: ignore[index]

    run_with_store(url, body)
