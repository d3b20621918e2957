"""Monitor mode with the project's Python client, on the in-memory broker and on Redis: listing, snapshot then
live with no gap and no duplicate, late joiners, fromSeq, Unsubscribe / UpdateSubscription, SubscribeAll,
presence. Transcripts come from a pipeline Publisher on the hub's broker, so every seq is known."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.broker_rig import KINDS
from tests.support.timing import eventually, scaled
from tests.voice_rig import backend_url, open_call, open_monitor, publisher, voice_hub


async def say(pub: Any, role: str, text: str, *, at: float = 0.0) -> int:
    """One turn as two partials and a final; returns the final's seq."""
    turn = f"turn_{role}_{abs(hash(text)) % 10**8}"
    words = text.split()
    await pub.send_transcript(role, words[0], is_final=False, turn_id=turn, start_time=at, end_time=at + 0.5)
    await pub.send_transcript(role, " ".join(words[:2]), is_final=False, turn_id=turn, start_time=at, end_time=at + 1)
    seq: int = await pub.send_transcript(role, text, is_final=True, turn_id=turn, start_time=at, end_time=at + 1.5)
    return seq


def history_seqs(monitor: Any, conversation_id: str) -> list[int]:
    seqs: list[int] = monitor.seqs(conversation_id)
    return seqs


def ids(rows: list[dict[str, Any]]) -> set[str]:
    return {str(row["id"]) for row in rows}


async def have_seq(monitor: Any, conversation_id: str, seq: int) -> None:
    await eventually(lambda: seq in history_seqs(monitor, conversation_id), 10, f"seq {seq} at the monitor")


@pytest.mark.parametrize("kind", KINDS)
def test_list_conversations_with_filters(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(backend_url(kind, request), agent="none", tmp_path=tmp_path) as rig:
            a = await open_call(rig, agent_id="agt_alpha", metadata={"channel": "phone"})
            b = await open_call(rig, agent_id="agt_beta")
            c = await open_call(rig, agent_id="agt_beta")
            await rig.runtime.store.add_tags("ten_default", b.conversation_id, ["vip"])
            await c.end("user_ended")
            monitor = await open_monitor(rig, scopes=frozenset({"monitor:read"}))
            assert ids(await monitor.list_conversations()) == {a.conversation_id, b.conversation_id}  # in progress
            assert ids(await monitor.list_conversations({"agentId": "agt_beta"})) == {b.conversation_id}
            assert ids(await monitor.list_conversations({"channel": "phone"})) == {a.conversation_id}
            assert ids(await monitor.list_conversations({"tags": ["vip"]})) == {b.conversation_id}
            assert ids(await monitor.list_conversations({"status": "completed"})) == {c.conversation_id}
            assert ids(await monitor.list_conversations({"direction": "outbound"})) == set()
            row = (await monitor.list_conversations({"channel": "phone"}))[0]
            assert row["status"] == "in_progress" and row["agentId"] == "agt_alpha" and "cost" in row
            for client in (a, b, c, monitor):
                await client.close()

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_snapshot_then_live_without_gap_or_duplicate(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(backend_url(kind, request), agent="none", tmp_path=tmp_path) as rig:
            caller = await open_call(rig)
            cid = caller.conversation_id
            pub = publisher(rig, cid)
            await say(pub, "user", "hello there agent")
            await pub.send_transcript("agent", "Hi", is_final=False, turn_id="turn_open", start_time=2, end_time=2.2)
            early = await open_monitor(rig)
            snapshot = await early.subscribe(cid)
            assert snapshot["conversation"]["id"] == cid and snapshot["conversation"]["status"] == "in_progress"
            assert [t["text"] for t in snapshot["transcript"]] == ["hello there agent"]
            assert [t["turnId"] for t in snapshot["partials"]] == ["turn_open"]
            assert snapshot["seq"] == await rig.runtime.broker.last_seq(cid)

            # live events published while a second monitor subscribes in the middle of them
            late = await open_monitor(rig, msgpack=True)

            async def talk() -> int:
                last = 0
                for n in range(6):
                    last = await say(pub, "agent" if n % 2 else "user", f"line number {n}", at=3 + n)
                    await caller.send_dtmf(str(n))
                    await asyncio.sleep(0.1)
                return last

            talking = asyncio.get_running_loop().create_task(talk())
            await asyncio.sleep(0.15)
            late_snapshot = await late.subscribe(cid)  # in the middle of the talk (on a loaded machine: maybe after)
            last = await talking
            last = max(last, await rig.runtime.broker.last_seq(cid))
            assert snapshot["seq"] < late_snapshot["seq"] <= last
            await have_seq(early, cid, last)
            if late_snapshot["seq"] < last:
                await have_seq(late, cid, last)
            assert history_seqs(early, cid) == list(range(snapshot["seq"] + 1, last + 1))
            assert history_seqs(late, cid) == list(range(late_snapshot["seq"] + 1, last + 1))
            # the late joiner's snapshot plus its live finals are exactly the finals in order
            finals = [t["text"] for t in late_snapshot["transcript"]] + [
                t["text"] for t in late.log.of("TranscriptTurn") if t["isFinal"]]
            assert finals == ["hello there agent"] + [f"line number {n}" for n in range(6)]
            digits = [d["digit"] for d in early.log.of("Dtmf")]
            assert digits == [str(n) for n in range(6)]
            turn = early.log.of("TranscriptTurn")[-1]
            assert set(turn) == {"conversationId", "turnId", "role", "text", "isFinal", "startTime", "endTime",
                                 "confidence", "words", "seq", "timestamp"}

            # fromSeq resumes: everything after it is replayed in order, then live
            resume = await open_monitor(rig)
            from_seq = snapshot["seq"] + 3
            resumed = await resume.subscribe(cid, {"fromSeq": from_seq})
            assert resumed["seq"] == from_seq and resumed["transcript"] == []
            await have_seq(resume, cid, last)
            final_seq = await say(pub, "user", "after the resume")
            await have_seq(resume, cid, final_seq)
            assert history_seqs(resume, cid) == list(range(from_seq + 1, final_seq + 1))
            for client in (caller, early, late, resume):
                await client.close()

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_update_subscription_and_unsubscribe(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(backend_url(kind, request), agent="none", tmp_path=tmp_path) as rig:
            caller = await open_call(rig)
            cid = caller.conversation_id
            pub = publisher(rig, cid)
            monitor = await open_monitor(rig)
            await monitor.subscribe(cid, {"partials": False})
            sending = True

            async def stream() -> None:
                while sending:
                    await caller.send_audio(b"\x00\x10" * 320)
                    await asyncio.sleep(0.02)

            audio = asyncio.get_running_loop().create_task(stream())
            level = await monitor.wait_for("AudioLevel", seconds=scaled(5))
            assert set(level) == {"conversationId", "caller", "agent", "timestamp"} and level["caller"] > -100
            assert not monitor.log.of("AudioFrame")
            await say(pub, "user", "partials are off")
            await monitor.wait_for("TranscriptTurn", seconds=scaled(5))
            assert all(t["isFinal"] for t in monitor.log.of("TranscriptTurn"))

            await monitor.update_subscription(cid, {"audio": "caller"})  # audio on, no new snapshot
            frame = await monitor.wait_for("AudioFrame", seconds=scaled(5))
            assert frame["track"] == "caller" and frame["sampleRate"] == 16000
            seq = await say(pub, "agent", "still one copy")
            await have_seq(monitor, cid, seq)
            seqs = history_seqs(monitor, cid)
            assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs)

            await monitor.update_subscription(cid, {"audio": "none"})
            await asyncio.sleep(0.1)  # frames already queued may still arrive
            count = len(monitor.log.of("AudioFrame"))
            levels = len(monitor.log.of("AudioLevel"))
            await eventually(lambda: len(monitor.log.of("AudioLevel")) > levels + 1, 5, "levels again")
            assert len(monitor.log.of("AudioFrame")) == count

            await monitor.unsubscribe(cid)
            await asyncio.sleep(0.1)
            before = len(monitor.log.events)
            await say(pub, "user", "nobody listens")
            await asyncio.sleep(0.3)
            assert [n for n, _ in monitor.log.events[before:]] == []
            sending = False
            await audio
            with pytest.raises(Exception, match="Not subscribed"):
                await monitor.update_subscription(cid, {"audio": "caller"})
            await caller.close()
            await monitor.close()

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_subscribe_all_filters_options_and_once_per_connection(kind: str, request: pytest.FixtureRequest,
                                                               tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(backend_url(kind, request), agent="none", tmp_path=tmp_path) as rig:
            existing = await open_call(rig, agent_id="agt_alpha")
            lifecycle_only = await open_monitor(rig)
            current = await lifecycle_only.subscribe_all({"agentId": "agt_alpha"}, {"transcript": False})
            assert [c["id"] for c in current] == [existing.conversation_id]
            everything = await open_monitor(rig, msgpack=True)
            await everything.subscribe_all({})
            alpha = await open_call(rig, agent_id="agt_alpha")
            beta = await open_call(rig, agent_id="agt_beta")
            await everything.subscribe(alpha.conversation_id)  # SubscribeAll and Subscribe both match alpha
            started = await lifecycle_only.wait_for("ConversationStarted", seconds=scaled(5))
            assert started["id"] == alpha.conversation_id and started["status"] == "in_progress" and started["seq"] == 1
            for call in (alpha, beta, existing):
                pub = publisher(rig, call.conversation_id)
                await say(pub, "user", f"words for {call.conversation_id}")
            await existing.end("user_ended")
            await alpha.end("user_ended")
            await beta.end("user_ended")
            for call in (alpha, beta, existing):
                last = await rig.runtime.broker.last_seq(call.conversation_id)
                await have_seq(everything, call.conversation_id, last)
            await lifecycle_only.wait_for("ConversationEnded", lambda e: e["conversationId"] == existing.conversation_id,
                                          scaled(5))
            await lifecycle_only.wait_for("ConversationEnded", lambda e: e["conversationId"] == alpha.conversation_id,
                                          scaled(5))
            await asyncio.sleep(0.2)
            seen = {p["conversationId"] for _, p in lifecycle_only.log.events if isinstance(p, dict)}
            assert beta.conversation_id not in seen  # filtered out
            assert not lifecycle_only.log.of("TranscriptTurn")  # options.transcript false
            assert not lifecycle_only.log.of("AudioFrame")
            for call in (alpha, beta):
                seqs = history_seqs(everything, call.conversation_id)
                assert len(seqs) == len(set(seqs)), seqs  # each event once per connection
                assert seqs == sorted(seqs)
            finals = [t for t in everything.log.of("TranscriptTurn")
                      if t["conversationId"] == alpha.conversation_id and t["isFinal"]]
            assert len(finals) == 1
            ended = [e for e in everything.log.of("ConversationEnded") if e["conversationId"] == beta.conversation_id]
            assert len(ended) == 1 and ended[0]["status"] == "completed"
            await everything.unsubscribe_all()
            late = await open_call(rig, agent_id="agt_alpha")
            await lifecycle_only.wait_for("ConversationStarted", lambda e: e["id"] == late.conversation_id, scaled(5))
            await asyncio.sleep(0.2)
            assert late.conversation_id not in {e["id"] for e in everything.log.of("ConversationStarted")}
            for client in (lifecycle_only, everything, late):
                await client.close()

    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_presence(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(backend_url(kind, request), agent="none", tmp_path=tmp_path) as rig:
            caller = await open_call(rig)
            cid = caller.conversation_id
            first = await open_monitor(rig, subject="usr_first")
            await first.subscribe(cid)
            second = await open_monitor(rig, subject="usr_second", scopes=frozenset({"monitor:read"}))
            await second.subscribe(cid)
            presence = await first.get_presence(cid)
            assert {p["userId"] for p in presence} == {"usr_first", "usr_second"}
            entry = next(p for p in presence if p["userId"] == "usr_second")
            assert entry["capabilities"] == ["monitor:read"] and entry["since"].endswith("Z")
            assert entry["connectionId"] == second.hub.connection_id
            joined = await first.wait_for("Presence", lambda p: len(p["watchers"]) == 2, scaled(5))
            assert joined["conversationId"] == cid
            await second.close()
            await first.wait_for("Presence", lambda p: [w["userId"] for w in p["watchers"]] == ["usr_first"], scaled(5))
            assert [p["userId"] for p in await first.get_presence(cid)] == ["usr_first"]
            await first.close()
            await caller.close()

    asyncio.run(main())


def test_from_seq_beyond_history_reports_a_gap_then_replays(tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(agent="none", tmp_path=tmp_path) as rig:
            rig.runtime.broker.log_maxlen = 5  # history keeps the last 5 events
            caller = await open_call(rig)
            cid = caller.conversation_id
            pub = publisher(rig, cid)
            for n in range(4):
                last = await say(pub, "user", f"turn number {n}")
            monitor = await open_monitor(rig)
            snapshot = await monitor.subscribe(cid, {"fromSeq": 1})
            assert snapshot["seq"] == 1
            gap = await monitor.wait_for("Gap", seconds=scaled(5))
            assert gap == {"conversationId": cid, "fromSeq": 2, "toSeq": last - 5, "reason": "history_trimmed"}
            await have_seq(monitor, cid, last)
            assert history_seqs(monitor, cid) == list(range(last - 4, last + 1))
            names = [n for n, _ in monitor.log.events if n != "Presence"]
            assert names[0] == "Gap"
            await monitor.close()
            await caller.close()

    asyncio.run(main())


def test_a_subscription_ends_a_while_after_its_conversation(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hub.voice.monitor.ENDED_WATCH_SECONDS", 0.3)

    async def main() -> None:
        async with voice_hub(agent="none", tmp_path=tmp_path) as rig:
            caller = await open_call(rig)
            cid = caller.conversation_id
            monitor = await open_monitor(rig)
            await monitor.subscribe(cid)
            await caller.end("user_ended")
            await monitor.wait_for("ConversationEnded", seconds=scaled(5))
            analysis = await publisher(rig, cid).send_analysis({"summary": "late but delivered"})
            update = await monitor.wait_for("ConversationUpdated", lambda u: u["seq"] == analysis, scaled(5))
            assert update["analysis"]["summary"] == "late but delivered"
            await eventually(lambda: not rig.runtime.voice.presence.of(cid), 5, "the watch to go")
            await monitor.update_subscription(cid, {"audio": "none"})  # a no-op now, not an error
            snapshot = await monitor.subscribe(cid)  # a finished call can still be read
            assert snapshot["conversation"]["status"] == "completed"
            await eventually(lambda: not rig.runtime.voice.presence.of(cid), 5, "the watch to go again")
            await monitor.close()

    asyncio.run(main())


def test_broker_outage_reports_only_what_went_missing(tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(agent="none", tmp_path=tmp_path) as rig:
            caller = await open_call(rig)
            cid = caller.conversation_id
            pub = publisher(rig, cid)
            monitor = await open_monitor(rig)
            await monitor.subscribe(cid, {"partials": False})
            last = await say(pub, "user", "heard live")  # ends with a final; the partials before it are skipped
            await have_seq(monitor, cid, last)
            await pub.send_transcript("user", "partial", is_final=False, start_time=2, end_time=3)
            broker = rig.runtime.broker
            broker.simulate_outage()  # nothing was lost: no Gap
            await monitor.get_presence(cid)  # a round trip: the outage report has run by now
            assert not monitor.log.of("Gap")
            feed = rig.runtime.voice.feeds.feeds[cid]
            watch = feed.watches[next(iter(feed.watches))]
            subscription = feed.subscription
            subscription.close()  # now events published are missed by this node ...
            lost = await say(pub, "agent", "published while deaf")
            feed.subscription = broker.subscribe_conversation(cid, feed)
            broker.simulate_outage()  # ... and the outage reports them
            gap = await monitor.wait_for("Gap", seconds=scaled(5))
            assert gap == {"conversationId": cid, "fromSeq": watch.last_seq + 1, "toSeq": lost,
                           "reason": "broker_outage"}
            assert len(monitor.log.of("Gap")) == 1
            resumed = await open_monitor(rig)
            await resumed.subscribe(cid, {"fromSeq": gap["fromSeq"] - 1})
            await have_seq(resumed, cid, lost)
            for client in (monitor, resumed, caller):
                await client.close()

    asyncio.run(main())


def test_presence_across_two_nodes(redis_url: str, tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(redis_url, agent="none", prefix="vhpresence", tmp_path=tmp_path / "a") as node_a, \
                voice_hub(redis_url, agent="none", prefix="vhpresence", tmp_path=tmp_path / "b") as node_b:
            caller = await open_call(node_a)
            cid = caller.conversation_id
            first = await open_monitor(node_a, subject="usr_a")
            await first.subscribe(cid)
            second = await open_monitor(node_b, subject="usr_b", msgpack=True)
            await second.subscribe(cid)
            await first.wait_for("Presence", lambda p: {w["userId"] for w in p["watchers"]} == {"usr_a", "usr_b"},
                                 scaled(5))
            await second.wait_for("Presence", lambda p: {w["userId"] for w in p["watchers"]} == {"usr_a", "usr_b"},
                                  scaled(5))
            for monitor in (first, second):
                assert {w["userId"] for w in await monitor.get_presence(cid)} == {"usr_a", "usr_b"}
            await second.close()
            await first.wait_for("Presence", lambda p: [w["userId"] for w in p["watchers"]] == ["usr_a"], scaled(5))
            outsider = await open_monitor(node_b, subject="usr_c")  # node b watches nothing of it now
            assert [w["userId"] for w in await outsider.get_presence(cid)] == ["usr_a"]
            for client in (first, outsider, caller):
                await client.close()

    asyncio.run(main())
