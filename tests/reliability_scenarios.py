"""Fault scenarios on real processes, shared by the CI tests (small) and scripts/outage_redis.py (large).

`redis_outage`: live conversations on hub nodes backed by one Redis; Redis is killed and started again; the
report says what the hubs, callers and monitors saw and how many acknowledged final turns were lost.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from hub.client.signalr import HubError
from hub.client.voice import VoiceCaller
from tests.reliability_rig import (
    HubProcess,
    PersistentRedis,
    ResumingMonitor,
    SpeakingCaller,
    TurnPipeline,
    history_finals,
    token,
)
from tests.support.timing import scaled


@dataclass
class OutageReport:
    conversations: int = 0
    nodes: int = 0
    outage_seconds: float = 0.0
    not_ready_after: float = -1.0  # seconds from the kill until every node's /readyz answered 503
    ready_again_after: float = -1.0  # seconds from the restart until every node's /readyz answered 200 again
    healthz_during: set[int] = field(default_factory=set)
    chunks_during: int = 0  # caller audio chunks sent (and answered) while Redis was down
    errors_during: int = 0  # Error{broker_unavailable} events callers got
    callers_with_error: int = 0
    callers_closed: int = 0  # caller connections lost (must be 0)
    callers_transcribed_after: int = 0  # callers that got a Transcription after Redis came back
    monitor_gaps: int = 0  # Gap{broker_outage} received
    monitors: int = 0
    history_finals: int = 0  # final turns in Redis history (the ground truth)
    acked: int = 0  # final turns Redis acknowledged to the test pipeline
    acked_missing: int = 0  # acknowledged but not in history (must be 0)
    lost: int = 0  # history finals some monitor never received (must be 0)
    store_lost: int = 0  # history finals missing from the REST transcript (/messages) after the calls ended (must be 0)
    out_of_order: int = 0  # distinct finals a monitor received out of seq order
    echo_user_turns: int = 0  # final user turns the echo agent published
    pipeline_retries: int = 0
    dtmf_during: str = ""  # what SendDtmfAsync answered while Redis was down
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [f"{name}: {sorted(value) if isinstance(value, set) else value}" for name, value in self.__dict__.items()]


def out_of_order(arrivals: list[int]) -> int:
    """How many distinct seqs arrived (the first time) after a larger one."""
    seen: set[int] = set()
    highest = 0
    late = 0
    for seq in arrivals:
        if seq in seen:
            continue
        seen.add(seq)
        late += seq < highest
        highest = max(highest, seq)
    return late


async def _until(check: Any, seconds: float) -> float:
    """Seconds until the async predicate holds (-1 if it never did)."""
    started = time.monotonic()
    deadline = started + scaled(seconds)
    while time.monotonic() < deadline:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    return -1.0


async def _store_lost(base: str, redis_url: str, ids: list[str]) -> int:
    """Final turns of Redis history that the conversation store (REST /messages) does not hold, once it settled."""
    from tests.reliability_rig import BOOTSTRAP_KEY

    async with httpx.AsyncClient(timeout=5, headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"}) as http:
        async def missing() -> int:
            count = 0
            for c in ids:
                answer = await http.get(f"{base}/api/v1/conversations/{c}/messages")
                held = {m["id"] for m in answer.json().get("messages", [])} if answer.status_code == 200 else set()
                count += sum(1 for t in await history_finals(redis_url, c) if "msg_" + t["turnId"][5:] not in held)
            return count

        async def settled() -> bool:
            return await missing() == 0

        await _until(settled, 5)
        return await missing()


async def redis_outage(redis: PersistentRedis, hubs: list[HubProcess], *, conversations: int, outage: float,
                       warmup: float, after: float, turn_every: float = 0.1) -> OutageReport:
    report = OutageReport(conversations=conversations, nodes=len(hubs), outage_seconds=outage)
    tok = await token(hubs[0].base)
    callers: list[VoiceCaller] = []
    monitors: list[ResumingMonitor] = []
    speakers: list[SpeakingCaller] = []
    pipeline: TurnPipeline | None = None
    http = httpx.AsyncClient(timeout=1.0)

    async def statuses(path: str) -> list[int]:
        out = []
        for hub in hubs:
            try:
                out.append((await http.get(hub.base + path)).status_code)
            except httpx.HTTPError:
                out.append(0)
        return out

    try:
        for i in range(conversations):
            callers.append(await VoiceCaller.connect(hubs[i % len(hubs)].base, tok, agent_id="agt_echo"))
        ids = [c.conversation_id for c in callers]
        for hub in hubs:
            monitor = ResumingMonitor([hub.base], tok, ids)
            await monitor.connect()
            monitors.append(monitor)
        speakers = [SpeakingCaller(c, i) for i, c in enumerate(callers)]
        for speaker in speakers:
            speaker.start()
        pipeline = TurnPipeline(redis.url, ids, every=turn_every)
        await pipeline.start()
        await asyncio.sleep(warmup)  # the load runs

        sent_before = sum(s.sent for s in speakers)
        killed = time.monotonic()
        redis.stop()

        async def not_ready() -> bool:
            return all(s == 503 for s in await statuses("/readyz"))

        report.not_ready_after = await _until(not_ready, outage + 5)
        try:
            await callers[0].send_dtmf("1")
            report.dtmf_during = "accepted"
        except HubError as exc:
            report.dtmf_during = str(exc)
        while time.monotonic() - killed < outage:
            report.healthz_during.update(await statuses("/healthz"))
            await asyncio.sleep(0.2)
        report.chunks_during = sum(s.sent for s in speakers) - sent_before
        report.errors_during = sum(len(s.errors("broker_unavailable")) for s in speakers)
        report.callers_with_error = sum(1 for s in speakers if s.errors("broker_unavailable"))
        transcripts_before = [len(c.log.of("Transcription")) for c in callers]
        redis.start()

        async def ready() -> bool:
            return all(s == 200 for s in await statuses("/readyz"))

        report.ready_again_after = await _until(ready, 15)
        await asyncio.sleep(after)  # the load runs on a recovered Redis
        for speaker in speakers:
            await speaker.stop()
        await pipeline.stop()
        report.callers_transcribed_after = sum(
            1 for c, n in zip(callers, transcripts_before, strict=True) if len(c.log.of("Transcription")) > n)
        report.callers_closed = sum(1 for c in callers if c.hub.closed.is_set())

        truth = {c: [int(t["seq"]) for t in await history_finals(redis.url, c)] for c in ids}
        report.history_finals = sum(len(v) for v in truth.values())
        report.acked = pipeline.total
        report.pipeline_retries = pipeline.failures
        report.acked_missing = sum(len(set(pipeline.acked[c]) - set(truth[c])) for c in ids)

        async def caught_up() -> bool:
            return all(m.finals(c) == truth[c] for m in monitors for c in ids)

        await _until(caught_up, 15)
        for monitor in monitors:
            for c in ids:
                report.lost += len(set(truth[c]) - set(monitor.finals(c)))
                report.out_of_order += out_of_order(monitor.arrivals[c])
            report.monitor_gaps += sum(1 for g in monitor.gaps if g.get("reason") == "broker_outage")
            report.errors += monitor.errors
        report.monitors = len(monitors)
        for c in ids:
            report.echo_user_turns += sum(1 for t in await history_finals(redis.url, c) if t.get("role") == "user")
        for caller in callers:
            if not caller.hub.closed.is_set():
                try:
                    await caller.end("user_ended")
                except (HubError, TimeoutError) as exc:
                    report.errors.append(f"EndSessionAsync of {caller.conversation_id}: {exc or 'timeout'}")
        report.store_lost = await _store_lost(hubs[0].base, redis.url, ids)
    finally:
        for speaker in speakers:
            await speaker.stop()
        if pipeline is not None:
            await pipeline.stop()
        for monitor in monitors:
            await monitor.close()
        for caller in callers:
            await caller.close()
        await http.aclose()
    return report
