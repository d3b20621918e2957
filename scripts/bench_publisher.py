"""Publisher benchmark: CPU per published message of an agent process, broker writes pipelined vs redis-py's pool.

    .venv/bin/python scripts/bench_publisher.py [--conversations 64] [--seconds 5] [--rounds 3]

Starts its own redis-server on a free loopback port. One process plays C conversations through
`hub.publisher.Publisher` like the fan-out benchmark's publisher: 50 agent frames/s each (20 ms PCM16 at 24 kHz,
staggered over the tick) and a final transcript turn every 2 s. Each round runs both modes one after the other:
`RedisBroker(pipelined=True)` (the default: one pipelined connection, hub/broker/redis_pipe.py) and
`RedisBroker(pipelined=False)` (every publish through redis-py's connection pool). Prints, per mode, this process's
CPU and Redis's CPU in microseconds per message (median of the rounds), how late the schedule ran, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.broker.redis_broker import RedisBroker  # noqa: E402
from hub.publisher import FRAME_BYTES, Publisher  # noqa: E402

TICK = 0.02
TURN_EVERY = 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def play(publisher: Publisher, offset: float, start: float, seconds: float, late: list[float]) -> int:
    sent = 0
    tick = 0
    frame = bytes(FRAME_BYTES)
    next_turn = start + offset
    while True:
        due = start + offset + tick * TICK
        if due - start >= seconds:
            return sent
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        late.append(max(0.0, -delay))
        await publisher.send_agent_audio(frame)
        sent += 1
        if due >= next_turn:
            await publisher.send_transcript("agent", "a turn", is_final=True, start_time=0.0, end_time=1.0)
            sent += 1
            next_turn += TURN_EVERY
        tick += 1


async def measure(url: str, redis_pid: int, pipelined: bool, conversations: int, seconds: float) -> dict[str, float]:
    broker = RedisBroker(url, pipelined=pipelined, max_connections=conversations + 8)
    await broker.start()
    try:
        publishers = [Publisher(broker, f"conv_bench_{n}") for n in range(conversations)]
        for publisher in publishers:  # connections and scripts ready before the clock starts
            await publisher.send_agent_audio(bytes(FRAME_BYTES))
        redis = psutil.Process(redis_pid)
        redis_before = sum(redis.cpu_times()[:2])
        cpu_before = time.process_time()
        late: list[float] = []
        start = time.monotonic() + 0.05
        counts = await asyncio.gather(*(play(p, TICK * n / conversations, start, seconds, late)
                                        for n, p in enumerate(publishers)))
        cpu = time.process_time() - cpu_before
        redis_cpu = sum(redis.cpu_times()[:2]) - redis_before
        sent = sum(counts)
        late.sort()
        return {"us_per_msg": cpu / sent * 1e6, "redis_us_per_msg": redis_cpu / sent * 1e6, "msgs": sent,
                "late_p99_ms": late[int(len(late) * 0.99)] * 1000}
    finally:
        await broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server is not installed: ./scripts/install --test installs it")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="voicehub-bench-")
    redis = subprocess.Popen([exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                              "--dir", workdir], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        url = f"redis://127.0.0.1:{port}/0"
        results: dict[str, list[dict[str, float]]] = {"pipelined": [], "pool": []}
        for n in range(args.rounds):
            for mode in ("pipelined", "pool"):
                result = asyncio.run(measure(url, redis.pid, mode == "pipelined", args.conversations, args.seconds))
                results[mode].append(result)
                print(f"round {n + 1} {mode:<9} {result['msgs'] / args.seconds:7.0f} msgs/s  publisher "
                      f"{result['us_per_msg']:6.1f} us/msg  redis {result['redis_us_per_msg']:5.1f} us/msg  "
                      f"late p99 {result['late_p99_ms']:.1f} ms", flush=True)
        med = {mode: {key: statistics.median(r[key] for r in runs) for key in ("us_per_msg", "redis_us_per_msg")}
               for mode, runs in results.items()}
        print(f"\n{args.conversations} conversations, median of {args.rounds} rounds:")
        for mode, values in med.items():
            print(f"  {mode:<9} publisher {values['us_per_msg']:6.1f} us/msg   redis {values['redis_us_per_msg']:5.1f} us/msg")
        print(f"  pool / pipelined: publisher CPU {med['pool']['us_per_msg'] / med['pipelined']['us_per_msg']:.2f}x, "
              f"redis CPU {med['pool']['redis_us_per_msg'] / med['pipelined']['redis_us_per_msg']:.2f}x")
    finally:
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
