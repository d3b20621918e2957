"""One measured point: C conversations x S subscribers against one server, with one protocol."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.common import Histogram, now_us
from bench.procs import JWT_SECRET, Helper, Server

LOSS_LIMIT = 0.001
P99_LIMIT_MS = 100.0
GRACE = 1.0  # seconds after the last publish for messages still in flight


@dataclass
class Target:
    """A server and how to reach it: kind hub|socketio|ws, protocol json|msgpack."""

    name: str
    kind: str
    protocol: str
    server: Server
    redis_url: str
    store: Any = None
    token: str = ""
    client: str = "python"  # hub only: "node" = the npm @microsoft/signalr client

    @property
    def subscriber(self) -> str:
        return "node:node_subscriber.cjs" if self.client == "node" else "bench.subscriber"

    async def conversations(self, count: int) -> list[str]:
        if self.kind != "hub":
            return ["c" + secrets.token_hex(6) for _ in range(count)]
        if self.store is None:
            from hub.auth.principal import Principal
            from hub.auth.tokens import TokenService
            from hub.store.redis_store import RedisConversationStore

            self.store = RedisConversationStore.from_url(self.redis_url)
            principal = Principal("bench", "ten_default", frozenset({"monitor:read", "monitor:listen"}), method="jwt")
            self.token = TokenService(JWT_SECRET).issue(principal, 7200)
        ids = []
        for _ in range(count):
            conversation = await self.store.create_conversation("ten_default", agent_id="agt_bench")
            ids.append(str(conversation["id"]))
        return ids

    async def close(self) -> None:
        if self.store is not None:
            await self.store.aclose()
            self.store = None


@dataclass
class PointResult:
    target: str
    protocol: str
    conversations: int
    subscribers: int
    offered: float  # messages/s the subscribers should receive
    delivered: float = 0.0
    p50: float = float("nan")
    p99: float = float("nan")
    max: float = float("nan")
    loss: float = 1.0
    server_cpu: float = 0.0  # % of one core over the measured window
    server_rss_mb: float = 0.0
    client_cpu: float = 0.0  # % of one core, all subscriber processes together
    machine_cpu: float = 0.0  # % of one core, every process on the machine (other users included)
    publisher_late_p99_ms: float = 0.0
    error: str = ""
    stalled: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.error and self.loss < LOSS_LIMIT and self.p99 < P99_LIMIT_MS


async def run_point(target: Target, conversations: int, subscribers: int, *, duration: float, warmup: float,
                    processes: int, stall: int = 0) -> PointResult:
    offered = conversations * subscribers * (50 + 0.5)
    result = PointResult(target.name, target.protocol, conversations, subscribers, offered, stalled=stall)
    ids = await target.conversations(conversations)
    connections = [cid for cid in ids for _ in range(subscribers)]
    shares: list[list[str]] = [connections[i::processes] for i in range(processes)]
    helpers: list[Helper] = []
    publisher: Helper | None = None
    try:
        for index, share in enumerate(shares):
            config = {"kind": target.kind, "url": target.server.url, "protocol": target.protocol,
                      "token": target.token, "conversations": share,
                      "stall": [ids] * stall if index == 0 else []}
            helpers.append(await Helper.start(target.subscriber if not (stall and index == 0) else "bench.subscriber",
                                              config))
        ready_timeout = 30 + len(connections) * 0.1
        await asyncio.gather(*(h.expect("READY", ready_timeout) for h in helpers))
        publisher = await Helper.start("bench.publisher", {"kind": target.kind, "redis_url": target.redis_url,
                                                           "conversations": ids, "duration": duration + warmup})
        started = int(await publisher.expect("STARTED", 30))
        for helper in helpers:
            helper.send(f"START {started + int(warmup * 1e6)}")
        await asyncio.sleep(warmup)
        cpu0, ccpu0, t0 = target.server.cpu_seconds(), sum(h.cpu_seconds() for h in helpers), now_us()
        busy0 = _busy()
        done = await publisher.expect("DONE", duration + 60)
        cpu1, ccpu1, t1 = target.server.cpu_seconds(), sum(h.cpu_seconds() for h in helpers), now_us()
        busy1 = _busy()
        await asyncio.sleep(GRACE)
        result.server_rss_mb = target.server.rss() / 1e6
        for helper in helpers:
            helper.send("STOP")
        outcomes = await asyncio.gather(*(h.expect("RESULT", 60) for h in helpers))
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"[:500]
        return result
    finally:
        for helper in [*helpers, *([publisher] if publisher else [])]:
            await helper.finish()
    import json

    published = json.loads(done)
    counts: dict[str, dict[str, int]] = published["counts"]
    expected = sum(counts[cid]["audio"] + counts[cid]["transcripts"] for cid in connections)
    hist = Histogram()
    received = 0
    for raw in outcomes:
        outcome = json.loads(raw)
        received += sum(outcome["audio"].values()) + sum(outcome["transcripts"].values())
        hist.merge(outcome["hist"])
    wall = (t1 - t0) / 1e6
    result.delivered = received / (duration + warmup)
    result.loss = max(0.0, 1 - received / expected) if expected else 1.0
    result.p50, result.p99, result.max = hist.percentile(50), hist.percentile(99), hist.max_ms
    result.server_cpu = (cpu1 - cpu0) / wall * 100
    result.client_cpu = (ccpu1 - ccpu0) / wall * 100
    result.machine_cpu = (busy1 - busy0) / wall * 100
    result.publisher_late_p99_ms = float(published["late_p99_ms"])
    errors = sum(c.get("errors", 0) for c in counts.values())
    result.extra = {"samples": hist.n, "expected": expected, "received": received, "publish_errors": errors}
    if errors:
        result.error = f"the publisher could not publish {errors} messages (Redis)"
    return result


def _busy() -> float:
    times = psutil.cpu_times()
    return float(times.user + times.system + times.nice + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0))
