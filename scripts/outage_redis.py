"""Redis outage under load, at full size: live conversations on hub nodes backed by one redis-server (append-only,
fsync always), the echo agent as its own process, callers speaking in real time, a pipeline publishing final turns;
redis-server is killed for `--outage` seconds and started again. Prints what the hubs, callers and monitors saw.

    .venv/bin/python scripts/outage_redis.py [--conversations 50] [--outage 10] [--nodes 1]

Exit status 0 when nothing was lost (acknowledged turns missing from history, history turns a monitor or the REST
transcript never got), no caller connection dropped and /readyz failed and recovered. The scenario is the one of
tests/test_reliability_redis_outage.py (tests/reliability_scenarios.py), with more load.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.reliability_rig import AgentProcess, HubProcess, PersistentRedis  # noqa: E402
from tests.reliability_scenarios import redis_outage  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--outage", type=float, default=10.0, help="seconds redis-server stays down")
    parser.add_argument("--nodes", type=int, default=1, help="hub processes")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--after", type=float, default=5.0)
    parser.add_argument("--turn-every", type=float, default=0.5, help="seconds between pipeline turns per conversation")
    args = parser.parse_args()
    redis = PersistentRedis()
    redis.start()
    hubs: list[HubProcess] = []
    started = time.monotonic()
    try:
        for _ in range(args.nodes):
            hubs.append(HubProcess(redis.url))
        with AgentProcess(redis.url):
            report = asyncio.run(redis_outage(redis, hubs, conversations=args.conversations, outage=args.outage,
                                              warmup=args.warmup, after=args.after,
                                              turn_every=args.turn_every))
        alive = all(h.proc.poll() is None for h in hubs)
    finally:
        for hub in hubs:
            hub.stop()
        redis.stop()
    print(f"redis outage: {args.conversations} conversations on {args.nodes} node(s), redis-server down "
          f"{args.outage:g} s, run {time.monotonic() - started:.0f} s")
    for line in report.lines():
        print("  " + line)
    per_second = report.chunks_during / args.outage if args.outage else 0.0
    print(f"  caller audio chunks handled during the outage: {per_second:.0f}/s (each answered with Error)")
    ok = (alive and report.lost == 0 and report.store_lost == 0 and report.acked_missing == 0
          and report.callers_closed == 0 and report.not_ready_after >= 0 and report.ready_again_after >= 0
          and report.healthz_during == {200} and not report.errors)
    print("RESULT: " + ("PASS, 0 final turns lost" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
