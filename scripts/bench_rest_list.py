"""Latency and throughput of GET /api/v1/conversations over 100,000 conversations, memory store and Redis store.

    .venv/bin/python scripts/bench_rest_list.py [--conversations 100000] [--seconds 3] [--redis-url redis://...]
                                                [--store both|memory|redis]

Without --redis-url it starts a private redis-server on a free loopback port (if redis-server is
installed). Requests go through the ASGI app in process (httpx ASGITransport): the numbers are the
REST layer plus the store, without sockets. Prints, per query and store, the mean, p50 and p99 time of one
page (target: well under 100 ms) and requests/s, then per store the worst p50 and p99 over the issue's
queries and over the further ones. Figures: docs/rest-api.md, "Listing performance".

Both stores get the same conversations (same random seed). The memory store is filled through its public
methods; the Redis store through `insert_records` (the store's own record and index writes, pipelined), with
records made by the same model functions the public methods use (new_record, tag_merger, ender).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from starlette.applications import Starlette

from hub.auth.keystore import MemoryKeyStore
from hub.auth.tokens import TokenService
from hub.rest import RateLimitSettings, RestServices, rest_routes
from hub.store import models as m
from hub.store.base import ConversationStore
from hub.store.ids import new_id
from hub.store.memory import MemoryConversationStore
from hub.store.redis_store import RedisConversationStore
from hub.store.timefmt import to_ms

QUERIES = {
    "default page": "",
    "page 50 of 100/page": "?page=50&pageSize=100",
    "channel=phone": "?channel=phone",
    "status+agent": "?status=completed&agentId=agt_3",
    "tags=vip,billing": "?tags=vip,billing",
    "date range": "?dateFrom=2025-06-02&dateTo=2025-06-05",
    "sortBy=durationSeconds": "?sortBy=durationSeconds",
    "minDuration=300": "?minDuration=300",
}
# Beyond the list: the other sort, deep pages, filters combined with dates and minDuration.
MORE_QUERIES = {
    "sortBy=endedAt asc": "?sortBy=endedAt&sortOrder=asc",
    "phone+minDuration=600": "?channel=phone&minDuration=600",
    "agent+tags page 30": "?agentId=agt_7&tags=vip,sales&page=30",
    "duration page 500 of 100": "?sortBy=durationSeconds&page=500&pageSize=100",
    "phone+June": "?channel=phone&dateFrom=2025-06-01&dateTo=2025-06-30",
    "completed+phone+June": "?status=completed&channel=phone&dateFrom=2025-06-01&dateTo=2025-06-30",
    "June+minDuration=300": "?dateFrom=2025-06-01&dateTo=2025-06-30&minDuration=300",
    "phone+June 5h+min=600": "?channel=phone&dateFrom=2025-06-01T05:00:00Z&dateTo=2025-06-30&minDuration=600",
}
T0 = datetime(2025, 6, 1, tzinfo=UTC)
TENANT = "ten_bench"


@dataclass
class Conversation:
    agent_id: str
    channel: str
    started: datetime
    tags: list[str]
    ended: datetime | None


def conversations(n: int) -> Iterator[Conversation]:
    rng = random.Random(1)
    channels = ["phone", "webrtc", "webchat", "sms"]
    for i in range(n):
        started = T0 + timedelta(seconds=i * 60)
        tags = rng.sample(["vip", "billing", "sales", "support"], rng.randint(0, 2))
        ended = started + timedelta(seconds=rng.randint(5, 900)) if i % 10 else None
        yield Conversation(f"agt_{i % 10}", channels[i % 4], started, tags, ended)


async def populate_memory(store: ConversationStore, n: int) -> None:
    for c in conversations(n):
        conv = await store.create_conversation(TENANT, agent_id=c.agent_id, channel=c.channel, started_at=c.started)
        if c.tags:
            await store.add_tags(TENANT, conv["id"], c.tags)
        if c.ended is not None:
            await store.end_conversation(TENANT, conv["id"], status="completed", reason="done", ended_at=c.ended)


def record_of(c: Conversation) -> m.Record:
    """What create_conversation, add_tags and end_conversation would store."""
    record = m.new_record(TENANT, new_id("conv", to_ms(c.started)), agent_id=c.agent_id, channel=c.channel,
                          direction="inbound", metadata=None, caller=None, started_at=c.started)
    if c.tags:
        m.tag_merger(c.tags)(record)
    if c.ended is not None:
        m.ender("completed", "done", to_ms(c.ended))(record)
    return record


async def populate_redis(store: RedisConversationStore, n: int) -> None:
    await store.insert_records(record_of(c) for c in conversations(n))


@dataclass
class Figures:
    label: str
    p50: float
    p99: float


async def measure(store: ConversationStore, seconds: float, n: int) -> list[Figures]:
    """Print each query's figures (one page each time) and answer them."""
    keys = MemoryKeyStore()
    key, _ = await keys.create_key("ten_bench", name="bench", scopes=["conversations:read"])
    services = RestServices(store=store, key_store=keys, token_service=TokenService("b" * 32), recording_secret=b"s" * 32,
                            data_dir=Path(tempfile.gettempdir()), rate_limits=RateLimitSettings(enabled=False),
                            clock=lambda: T0 + timedelta(seconds=n * 60 + 30))
    app = Starlette(routes=rest_routes(services))
    headers = {"Authorization": f"Bearer {key}"}
    figures: list[Figures] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        for label, query in (QUERIES | MORE_QUERIES).items():
            first = await client.get("/api/v1/conversations" + query, headers=headers)
            first.raise_for_status()
            times: list[float] = []
            start = time.perf_counter()
            while time.perf_counter() - start < seconds:
                t = time.perf_counter()
                (await client.get("/api/v1/conversations" + query, headers=headers)).raise_for_status()
                times.append(time.perf_counter() - t)
            times.sort()
            mean = sum(times) / len(times)
            p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]
            print(f"  {label:<24} mean {mean * 1000:7.2f} ms  p50 {p50 * 1000:7.2f} ms  p99 {p99 * 1000:7.2f} ms"
                  f"  {len(times) / seconds:7.0f} requests/s   (total {first.json()['total']})", flush=True)
            figures.append(Figures(label, p50, p99))
    return figures


def print_worst(store: str, n: int, figures: list[Figures]) -> None:
    for title, labels in (("the issue's", QUERIES), ("more", MORE_QUERIES)):
        chosen = [f for f in figures if f.label in labels]
        p50 = max(chosen, key=lambda f: f.p50)
        p99 = max(chosen, key=lambda f: f.p99)
        print(f"{store} store, {n} conversations, {title} {len(chosen)} queries: worst p50 {p50.p50 * 1000:.2f} ms "
              f"({p50.label}), worst p99 {p99.p99 * 1000:.2f} ms ({p99.label})", flush=True)


@contextmanager
def private_redis() -> Iterator[str | None]:
    exe = shutil.which("redis-server")
    if exe is None:
        yield None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp(prefix="bench-redis-")
    command = [exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", workdir]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(10)


async def main_async(args: argparse.Namespace, redis_url: str | None) -> None:
    n = args.conversations
    summary: list[tuple[str, list[Figures]]] = []
    if args.store in ("both", "memory"):
        print(f"memory store, {n} conversations")
        memory = MemoryConversationStore()
        t = time.perf_counter()
        await populate_memory(memory, n)
        print(f"  (populated in {time.perf_counter() - t:.1f} s)")
        summary.append(("memory", await measure(memory, args.seconds, n)))
    if args.store in ("both", "redis") and redis_url is None:
        print("redis store: skipped (no redis-server and no --redis-url)")
    elif args.store in ("both", "redis"):
        summary.append(("redis", await measure_redis(str(redis_url), args.seconds, n)))
    for store, figures in summary:
        print_worst(store, n, figures)


async def measure_redis(redis_url: str, seconds: float, n: int) -> list[Figures]:
    redis = Redis.from_url(redis_url)
    prefix = f"bench{random.randrange(10**6)}"
    try:
        store = RedisConversationStore(redis, prefix=prefix)
        print(f"redis store ({redis_url}, prefix {prefix}), {n} conversations")
        t = time.perf_counter()
        await populate_redis(store, n)
        print(f"  (populated in {time.perf_counter() - t:.1f} s)")
        return await measure(store, seconds, n)
    finally:
        batch: list[Any] = []
        async for key in redis.scan_iter(f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await redis.unlink(*batch)
                batch.clear()
        if batch:
            await redis.unlink(*batch)
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=3.0, help="per query")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--store", choices=("both", "memory", "redis"), default="both")
    args = parser.parse_args()
    if args.redis_url or args.store == "memory":
        asyncio.run(main_async(args, args.redis_url))
        return
    with private_redis() as url:
        asyncio.run(main_async(args, url))


if __name__ == "__main__":
    main()
