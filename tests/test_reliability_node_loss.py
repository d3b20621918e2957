"""Node loss and rolling restart (issue 8, point 3) on real hub processes sharing one Redis.

SIGTERM drains a node: every client gets Close{allowReconnect: true} within the grace and the process exits; a monitor
with reconnect logic lands on the other node and resumes with fromSeq without losing a final turn. SIGKILL of a node
loses nothing a publisher was acknowledged: history lives in Redis and a monitor on the surviving node recovers it.
"""

from __future__ import annotations

import asyncio
import signal
import time

from hub.client.voice import VoiceCaller
from tests.reliability_rig import HubProcess, ResumingMonitor, TurnPipeline, history_finals, token
from tests.support.timing import eventually, wait_for

GRACE = 3.0


async def _caught_up(redis_url: str, monitor: ResumingMonitor, ids: list[str]) -> dict[str, list[int]]:
    truth = {c: [int(t["seq"]) for t in await history_finals(redis_url, c)] for c in ids}
    try:
        await eventually(lambda: all(monitor.finals(c) == truth[c] for c in ids), 10, "the monitor to catch up")
    except AssertionError:
        pass  # the assertions below say what is missing
    return truth


def test_sigterm_drains_and_a_monitor_resumes_on_the_other_node(redis_url: str) -> None:
    async def main(a: HubProcess, b: HubProcess) -> None:
        tok = await token(a.base)
        callers = [await VoiceCaller.connect(node.base, tok, agent_id="agt_echo") for node in (a, a, b, b)]
        ids = [c.conversation_id for c in callers]
        monitor = ResumingMonitor([a.base, b.base], tok, ids)
        pipeline = TurnPipeline(redis_url, ids)
        try:
            await monitor.connect()
            await pipeline.start()
            await eventually(lambda: all(len(monitor.arrivals[c]) >= 3 for c in ids), 10, "turns before the restart")
            assert a.readyz() == 200
            signalled = time.monotonic()
            a.signal(signal.SIGTERM)
            await wait_for(asyncio.gather(*(c.hub.closed.wait() for c in callers[:2])), GRACE)
            closed_after = time.monotonic() - signalled
            assert [c.hub.allow_reconnect for c in callers[:2]] == [True, True]
            assert closed_after < GRACE
            await eventually(lambda: bool(monitor.closes), GRACE + 5, "the monitor to see its Close")  # not only the callers
            await monitor.connected(GRACE + 5)
            assert monitor.closes[0] == (None, True) and monitor.reconnects == 1
            exit_code = await asyncio.to_thread(a.wait, GRACE + 10)
            assert exit_code in (0, -signal.SIGTERM), exit_code
            assert monitor.node % 2 == 1  # now on b
            seen = {c: len(monitor.arrivals[c]) for c in ids}
            await eventually(lambda: all(len(monitor.arrivals[c]) >= seen[c] + 3 for c in ids[2:]), 10,
                             "turns after the restart")
            await pipeline.stop()
            truth = await _caught_up(redis_url, monitor, ids)
            for c in ids:
                assert monitor.finals(c) == truth[c], f"{c}: lost {sorted(set(truth[c]) - set(monitor.finals(c)))}"
            assert monitor.errors == []
            for caller in callers[2:]:  # the callers on b never noticed
                assert not caller.hub.closed.is_set()
                await caller.end("user_ended")
        finally:
            await pipeline.stop()
            await monitor.close()
            for caller in callers:
                await caller.close()

    with HubProcess(redis_url, drain_grace=GRACE) as a, HubProcess(redis_url, drain_grace=GRACE) as b:
        asyncio.run(main(a, b))
        assert "Traceback" not in a.log(), a.log()[-3000:]


def test_sigkill_loses_nothing_acknowledged_to_a_publisher(redis_url: str) -> None:
    async def main(a: HubProcess, b: HubProcess) -> None:
        tok = await token(b.base)
        callers = [await VoiceCaller.connect(node.base, tok, agent_id="agt_echo") for node in (a, b)]
        ids = [c.conversation_id for c in callers]
        monitor = ResumingMonitor([a.base, b.base], tok, ids, reconnect_on_drop=True)
        pipeline = TurnPipeline(redis_url, ids)
        try:
            await monitor.connect()
            await pipeline.start()
            await eventually(lambda: all(len(monitor.arrivals[c]) >= 3 for c in ids), 10, "turns before the kill")
            a.signal(signal.SIGKILL)
            await asyncio.to_thread(a.wait, 10)
            await wait_for(callers[0].hub.closed.wait(), 10)
            assert not callers[0].hub.allow_reconnect  # no Close: the node died
            await monitor.connected(10)
            seen = {c: len(monitor.arrivals[c]) for c in ids}
            await eventually(lambda: all(len(monitor.arrivals[c]) >= seen[c] + 3 for c in ids), 10,
                             "turns after the kill")
            await pipeline.stop()
            truth = await _caught_up(redis_url, monitor, ids)
            for c in ids:
                assert set(pipeline.acked[c]) <= set(truth[c]), "an acknowledged turn is missing from history"
                assert monitor.finals(c) == truth[c], f"{c}: lost {sorted(set(truth[c]) - set(monitor.finals(c)))}"
            assert pipeline.total > 0 and monitor.errors == []
            assert b.readyz() == 200
            await callers[1].end("user_ended")
        finally:
            await pipeline.stop()
            await monitor.close()
            for caller in callers:
                await caller.close()

    with HubProcess(redis_url, drain_grace=GRACE) as a, HubProcess(redis_url, drain_grace=GRACE) as b:
        asyncio.run(main(a, b))
