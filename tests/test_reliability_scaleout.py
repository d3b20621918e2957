"""Scale-out (issue 8, point 1): three hub processes and the echo agent process on one Redis; callers, monitors and a
SubscribeAll monitor spread over the nodes. Every final turn reaches every subscriber exactly once, in seq order.

Long polling and SSE keep a connection's state on the node that negotiated it (docs/operations.md: sticky sessions);
a request that lands on another node is refused clearly with 404 "No Connection with that ID".
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from hub.client.signalr import HubClient
from hub.client.voice import VoiceCaller
from tests.reliability_rig import AgentProcess, HubProcess, ResumingMonitor, TurnPipeline, history_finals, token
from tests.support.timing import eventually


def test_three_nodes_deliver_every_final_turn_once_in_order(redis_url: str) -> None:
    async def main(nodes: list[HubProcess]) -> None:
        tok = await token(nodes[0].base)
        callers = [await VoiceCaller.connect(nodes[i % 3].base, tok, agent_id="agt_echo") for i in range(6)]
        ids = [c.conversation_id for c in callers]
        monitors = [ResumingMonitor([node.base], tok, ids) for node in nodes]
        all_finals: list[tuple[str, int]] = []

        def on_turn(arguments: list[Any]) -> None:
            turn = arguments[0]
            if turn.get("isFinal") and turn.get("conversationId") in ids:
                all_finals.append((turn["conversationId"], int(turn["seq"])))

        watcher = await HubClient.connect(nodes[1].base + "/hubs/voice", token=tok, handlers={"TranscriptTurn": on_turn})
        pipeline = TurnPipeline(redis_url, ids)
        try:
            for monitor in monitors:
                await monitor.connect()
            await watcher.invoke("SubscribeAll", {}, {"partials": False})
            await pipeline.start()
            await eventually(lambda: all(len(m.arrivals[c]) >= 15 for m in monitors for c in ids), 12,
                             "15 final turns per conversation on every node")
            await pipeline.stop()
            truth = {c: [int(t["seq"]) for t in await history_finals(redis_url, c)] for c in ids}

            def complete() -> bool:
                return (all(m.arrivals[c] == truth[c] for m in monitors for c in ids)
                        and all([t["seq"] for t in caller.final_turns()] == truth[caller.conversation_id]
                                for caller in callers)
                        and all([s for c2, s in all_finals if c2 == c] == truth[c] for c in ids))

            try:
                await eventually(complete, 10, "every subscriber to hold every final turn")
            except AssertionError:
                pass  # the assertions below say what differs
            for c in ids:
                assert len(truth[c]) >= 15
                for n, monitor in enumerate(monitors):
                    assert monitor.arrivals[c] == truth[c], f"monitor on node {n}, {c}"  # once each, in order
                assert [s for c2, s in all_finals if c2 == c] == truth[c], f"SubscribeAll monitor, {c}"
            for caller in callers:
                assert [t["seq"] for t in caller.final_turns()] == truth[caller.conversation_id]
            assert all(m.gaps == [] and m.errors == [] for m in monitors)
            async with httpx.AsyncClient(timeout=5) as http:
                for node in nodes:  # every node measured its fan-out (contract section 6)
                    text = (await http.get(node.base + "/metrics")).text
                    count = re.search(r"^voicehub_fanout_latency_seconds_count (\d+)$", text, re.MULTILINE)
                    assert count and int(count.group(1)) >= 15 * len(ids), node.base
                    assert 'voicehub_fanout_latency_seconds_bucket{le="+Inf"}' in text
            for caller in callers:
                await caller.end("user_ended")
        finally:
            await pipeline.stop()
            await watcher.close()
            for monitor in monitors:
                await monitor.close()
            for caller in callers:
                await caller.close()

    with HubProcess(redis_url) as a, HubProcess(redis_url) as b, HubProcess(redis_url) as c, AgentProcess(redis_url):
        asyncio.run(main([a, b, c]))


def test_a_connection_token_from_another_node_is_refused_clearly(redis_url: str) -> None:
    async def main(a: HubProcess, b: HubProcess) -> None:
        tok = await token(a.base)
        async with httpx.AsyncClient(timeout=5, headers={"Authorization": f"Bearer {tok}"}) as http:
            negotiated = (await http.post(a.base + "/hubs/voice/negotiate?negotiateVersion=1")).json()
            connection = negotiated["connectionToken"]
            for method, headers in (("GET", {}), ("GET", {"Accept": "text/event-stream"}), ("POST", {}),
                                    ("DELETE", {})):
                wrong = await http.request(method, f"{b.base}/hubs/voice?id={connection}", headers=headers,
                                           content=b'{"protocol":"json","version":1}\x1e' if method == "POST" else None)
                assert (wrong.status_code, wrong.text) == (404, "No Connection with that ID"), method
            right = await http.get(f"{a.base}/hubs/voice?id={connection}")  # the first long poll answers at once
            assert right.status_code == 200
            await http.delete(f"{a.base}/hubs/voice?id={connection}")

    with HubProcess(redis_url) as a, HubProcess(redis_url) as b:
        asyncio.run(main(a, b))
