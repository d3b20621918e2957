"""Memory mode: server RSS over N idle connections (handshake done, nothing watched), then over N subscriptions.

Each server is measured on its own, in a fresh process: RSS after a warm-up connection, after N idle connections (spread over the
subscriber processes), then after each connection subscribed to one of N/10 conversations with audio. The deltas
divided by N are the figures; RSS is read after a short settle so allocations in flight are counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bench.procs import Helper

SETTLE = 1.5
SUBS_PER_CONVERSATION = 10


async def _connections(run: Any, name: str, protocol: str, ids: list[str], idle_first: bool) -> list[Helper]:
    target = run.target(name, protocol)
    processes = run.args.processes
    helpers = []
    for i in range(processes):
        config = {"kind": target.kind, "url": target.server.url, "protocol": protocol, "token": target.token,
                  "conversations": ids[i::processes], "idle_first": idle_first}
        helpers.append(await Helper.start(target.subscriber, config))
    return helpers


async def measure(run: Any, name: str, count: int, log: Callable[[str], None]) -> dict[str, Any]:
    protocol = run.args.protocols[0]
    run.fresh(name, protocol)  # a new server process: one that ran the sweeps reuses freed memory, hiding growth
    target = run.target(name, protocol)
    server = target.server
    conversations = await target.conversations(max(1, count // SUBS_PER_CONVERSATION))
    warm = await _connections(run, name, protocol, conversations[:1], False)  # imports, pools, first-use caches
    await asyncio.gather(*(h.expect("READY", 60) for h in warm))
    for helper in warm:
        helper.send("STOP")
        await helper.expect("RESULT", 30)
        await helper.finish()
    await asyncio.sleep(SETTLE)
    base = server.rss()
    ids = [conversations[i % len(conversations)] for i in range(count)]
    helpers = await _connections(run, name, protocol, ids, True)
    try:
        await asyncio.gather(*(h.expect("OPEN", 120 + count * 0.1) for h in helpers))
        await asyncio.sleep(SETTLE)
        idle = server.rss()
        for helper in helpers:
            helper.send("SUBSCRIBE")
        await asyncio.gather(*(h.expect("READY", 120 + count * 0.1) for h in helpers))
        await asyncio.sleep(SETTLE)
        subscribed = server.rss()
        for helper in helpers:
            helper.send("STOP")
        await asyncio.gather(*(h.expect("RESULT", 60) for h in helpers))
    finally:
        for helper in helpers:
            await helper.finish(30)
    result = {"connections": count, "conversations": len(conversations), "rss_base_mb": base / 1e6,
              "per_idle_connection_kb": (idle - base) / count / 1000,
              "per_subscription_kb": (subscribed - idle) / count / 1000}
    log(f"   {name:<10} base RSS {base / 1e6:6.1f} MB   per idle connection {result['per_idle_connection_kb']:6.1f} KB"
        f"   per subscription {result['per_subscription_kb']:6.1f} KB   ({count} connections, "
        f"{len(conversations)} conversations)")
    return result


async def run_memory(run: Any, count: int, log: Callable[[str], None]) -> dict[str, Any]:
    log(f"\n== memory: server RSS delta over {count} idle connections, then one subscription each ==")
    out: dict[str, Any] = {}
    for name in run.args.servers:
        try:
            out[name] = await measure(run, name, count, log)
        except Exception as exc:
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            log(f"   {name:<10} ERROR {out[name]['error']}")
    return out
