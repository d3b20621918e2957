"""Publisher benchmark: CPU per published message of an agent process, broker writes pipelined vs redis-py's pool.

    .venv/bin/python scripts/bench_publisher.py [--conversations 64] [--seconds 5] [--rounds 3]

Starts its own redis-server on a free loopback port. One process plays C conversations through
`hub.publisher.Publisher` like the fan-out benchmark's publisher: 50 agent frames/s each (20 ms PCM16 at 24 kHz,
staggered over the tick) and a final transcript turn every ~2 s, played by the fan-out benchmark's own
scheduler (`bench.publisher.play`). Each round runs both modes one after the other:
`RedisBroker(pipelined=True)` (the default: one pipelined connection, hub/broker/redis_pipe.py) and
`RedisBroker(pipelined=False)` (every publish through redis-py's connection pool). Prints, per mode, this process's
CPU and Redis's CPU in microseconds per message (median of the rounds), how late the schedule ran, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
sys.path[:0] = [str(SCRIPTS), str(SCRIPTS.parent)]

from bench.procs import RedisServer  # noqa: E402
from bench.publisher import TICK, play  # noqa: E402

from hub.broker.redis_broker import RedisBroker  # noqa: E402
from hub.publisher import FRAME_BYTES, Publisher  # noqa: E402


async def measure(redis: RedisServer, pipelined: bool, conversations: int, seconds: float) -> dict[str, float]:
    broker = RedisBroker(redis.url, pipelined=pipelined, max_connections=conversations + 8)
    await broker.start()
    try:
        publishers = [Publisher(broker, f"conv_bench_{n}") for n in range(conversations)]
        for publisher in publishers:  # connections and scripts ready before the clock starts
            await publisher.send_agent_audio(bytes(FRAME_BYTES))
        frame = bytes(FRAME_BYTES)

        def senders(p: Publisher) -> tuple[Any, Any]:
            async def audio(at: int) -> None:
                await p.send_agent_audio(frame)

            async def turn(at: int) -> None:
                await p.send_transcript("agent", "a turn", is_final=True, start_time=0.0, end_time=1.0)

            return audio, turn

        counts = [{"audio": 0, "transcripts": 0, "errors": 0} for _ in publishers]
        redis_before = sum(redis.ps.cpu_times()[:2])
        cpu_before = time.process_time()
        late: list[float] = []
        start = time.monotonic() + 0.05
        await asyncio.gather(*(play(*senders(p), TICK * n / conversations, start, seconds, counts[n], late)
                               for n, p in enumerate(publishers)))
        cpu = time.process_time() - cpu_before
        redis_cpu = sum(redis.ps.cpu_times()[:2]) - redis_before
        sent = sum(c["audio"] + c["transcripts"] for c in counts)
        late.sort()
        return {"us_per_msg": cpu / sent * 1e6, "redis_us_per_msg": redis_cpu / sent * 1e6, "msgs": sent,
                "errors": sum(c["errors"] for c in counts), "late_p99_ms": late[int(len(late) * 0.99)] * 1000}
    finally:
        await broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    redis = RedisServer()
    try:
        results: dict[str, list[dict[str, float]]] = {"pipelined": [], "pool": []}
        for n in range(args.rounds):
            for mode in ("pipelined", "pool"):
                result = asyncio.run(measure(redis, mode == "pipelined", args.conversations, args.seconds))
                results[mode].append(result)
                print(f"round {n + 1} {mode:<9} {result['msgs'] / args.seconds:7.0f} msgs/s  publisher "
                      f"{result['us_per_msg']:6.1f} us/msg  redis {result['redis_us_per_msg']:5.1f} us/msg  "
                      f"late p99 {result['late_p99_ms']:.1f} ms  errors {result['errors']:.0f}", flush=True)
        med = {mode: {key: statistics.median(r[key] for r in runs) for key in ("us_per_msg", "redis_us_per_msg")}
               for mode, runs in results.items()}
        print(f"\n{args.conversations} conversations, median of {args.rounds} rounds:")
        for mode, values in med.items():
            print(f"  {mode:<9} publisher {values['us_per_msg']:6.1f} us/msg   redis {values['redis_us_per_msg']:5.1f} us/msg")
        print(f"  pool / pipelined: publisher CPU {med['pool']['us_per_msg'] / med['pipelined']['us_per_msg']:.2f}x, "
              f"redis CPU {med['pool']['redis_us_per_msg'] / med['pipelined']['redis_us_per_msg']:.2f}x")
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
