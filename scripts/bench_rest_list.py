"""Latency and throughput of GET /api/v1/conversations over 100,000 conversations, memory store and Redis store.

    .venv/bin/python scripts/bench_rest_list.py [--conversations 100000] [--seconds 3] [--redis-url redis://...]

Without --redis-url it starts a private redis-server on a free loopback port (if redis-server is
installed). Requests go through the ASGI app in process (httpx ASGITransport): the numbers are the
REST layer plus the store, without sockets. Prints, per query and store, the mean, p50 and p99 time of one
page (target: well under 100 ms) and requests/s.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from redis.asyncio import Redis
from starlette.applications import Starlette

from hub.auth.keystore import MemoryKeyStore
from hub.auth.tokens import TokenService
from hub.rest import RateLimitSettings, RestServices, rest_routes
from hub.store.base import ConversationStore
from hub.store.memory import MemoryConversationStore
from hub.store.redis_store import RedisConversationStore

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
T0 = datetime(2025, 6, 1, tzinfo=UTC)


async def populate(store: ConversationStore, n: int) -> None:
    rng = random.Random(1)
    channels = ["phone", "webrtc", "webchat", "sms"]
    for i in range(n):
        started = T0 + timedelta(seconds=i * 60)
        conv = await store.create_conversation("ten_bench", agent_id=f"agt_{i % 10}", channel=channels[i % 4], started_at=started)
        tags = rng.sample(["vip", "billing", "sales", "support"], rng.randint(0, 2))
        if tags:
            await store.add_tags("ten_bench", conv["id"], tags)
        if i % 10:
            await store.end_conversation("ten_bench", conv["id"], status="completed", reason="done",
                                         ended_at=started + timedelta(seconds=rng.randint(5, 900)))


async def measure(store: ConversationStore, seconds: float, n: int) -> None:
    keys = MemoryKeyStore()
    key, _ = await keys.create_key("ten_bench", name="bench", scopes=["conversations:read"])
    services = RestServices(store=store, key_store=keys, token_service=TokenService("b" * 32), recording_secret=b"s" * 32,
                            data_dir=Path(tempfile.gettempdir()), rate_limits=RateLimitSettings(enabled=False),
                            clock=lambda: T0 + timedelta(seconds=n * 60 + 30))
    app = Starlette(routes=rest_routes(services))
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        for label, query in QUERIES.items():
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
    print(f"memory store, {args.conversations} conversations")
    memory = MemoryConversationStore()
    await populate(memory, args.conversations)
    await measure(memory, args.seconds, args.conversations)
    if redis_url is None:
        print("redis store: skipped (no redis-server and no --redis-url)")
        return
    redis = Redis.from_url(redis_url)
    try:
        prefix = f"bench{random.randrange(10**6)}"
        store = RedisConversationStore(redis, prefix=prefix)
        print(f"redis store ({redis_url}, prefix {prefix}), {args.conversations} conversations")
        t = time.perf_counter()
        await populate(store, args.conversations)
        print(f"  (populated in {time.perf_counter() - t:.1f} s)")
        await measure(store, args.seconds, args.conversations)
        async for key in redis.scan_iter(f"{prefix}:*", count=1000):
            await redis.delete(key)
    finally:
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=3.0, help="per query")
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    if args.redis_url:
        asyncio.run(main_async(args, args.redis_url))
        return
    with private_redis() as url:
        asyncio.run(main_async(args, url))


if __name__ == "__main__":
    main()
