"""Fan-out benchmark: the hub against python-socketio (AsyncRedisManager) and a plain websockets relay, same run.

    .venv/bin/python scripts/bench_fanout.py --quick          # ~2-3 minutes
    .venv/bin/python scripts/bench_fanout.py                  # full: both protocols, two S values, slow + memory modes
    .venv/bin/python scripts/bench_fanout.py --mode slow      # one subscriber stops reading: the others' p99
    .venv/bin/python scripts/bench_fanout.py --mode memory    # RSS per idle connection and per subscription

Starts its own redis-server on a free loopback port and every server as a subprocess. Workload per point: C
conversations x 50 agent frames/s (20 ms PCM16 24 kHz, publish time inside each frame) + a transcript turn every
~2 s, S subscribers per conversation (one connection each, spread over several subscriber processes). Points are
run in rising load, the servers interleaved at each load so background noise hits them alike; a server drops out
after its first failing point, then its knee is refined by bisection on C. Knee = the largest offered load with
loss < 0.1 % and p99 < 100 ms. Results (every point, knees, ratios) go to bench-results/fanout-*.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench.memory import run_memory  # noqa: E402
from bench.point import PointResult, Target, run_point  # noqa: E402
from bench.procs import RedisServer, Server, hub_server, socketio_server, ws_server  # noqa: E402
from bench.report import HEADER, efficiency, knee, row, save  # noqa: E402

QUICK = {"protocols": ["msgpack"], "subs": [10], "levels": [4, 8, 16, 24, 32, 48, 64, 96, 128], "duration": 3.0,
         "warmup": 1.0, "bisect": 1, "retries": 1}
FULL = {"protocols": ["msgpack", "json"], "subs": [10, 40], "levels": [1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128],
        "duration": 6.0, "warmup": 2.0, "bisect": 2, "retries": 2}
PEERS = ("hub", "socketio", "websockets")
SLOW_DURATION = 12.0
HALF_KNEE_RUNS = 3
PUBLISHER_LATE_MS = 20.0  # a publisher this late (p99 behind its 20 ms schedule) was starved by other load


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def log(message: str) -> None:
    print(message, flush=True)


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.redis = RedisServer()
        self.servers: dict[tuple[str, str], Server] = {}
        self.targets: dict[tuple[str, str], Target] = {}
        self.results: list[PointResult] = []
        self.closing: list[Target] = []
        self.capped: set[str] = set()
        self.started = time.monotonic()

    def target(self, name: str, protocol: str) -> Target:
        key = (name, protocol)
        if key not in self.targets:
            url = self.redis.url
            if name == "hub":
                server = self.servers.get(("hub", "")) or hub_server(url)
                self.servers[("hub", "")] = server
                self.targets[key] = Target("hub", "hub", protocol, server, url, client=self.args.clients)
            elif name == "websockets":
                server = self.servers.get(("websockets", "")) or ws_server(url)
                self.servers[("websockets", "")] = server
                self.targets[key] = Target("websockets", "ws", protocol, server, url)
            else:  # socket.io's serializer is per server
                server = socketio_server(url, "msgpack" if protocol == "msgpack" else "default")
                self.servers[("socketio", protocol)] = server
                self.targets[key] = Target("socketio", "socketio", protocol, server, url)
        return self.targets[key]

    def fresh(self, name: str, protocol: str) -> None:
        """Stop this server's process (if any): the next `target` starts a new one."""
        key = ("socketio", protocol) if name == "socketio" else (name, "")
        server = self.servers.pop(key, None)
        if server is not None:
            server.stop()
        for target_key in [k for k, t in self.targets.items() if t.server is server]:
            self.closing.append(self.targets.pop(target_key))

    async def point(self, name: str, protocol: str, c: int, s: int, stall: int = 0, retries: int = 0) -> PointResult:
        """Run a point; a failing one is run again up to `retries` times (the machine is shared: one stall of
        another user's job must not end a sweep) and passes if any run passes. A point whose publisher ran late
        is flagged: the publisher itself was starved, so that run says little about the server."""
        a = self.args
        attempt = 0
        while True:
            result = await run_point(self.target(name, protocol), c, s, duration=a.duration, warmup=a.warmup,
                                     processes=a.processes, stall=stall)
            attempt += 1
            result.extra["attempt"] = attempt
            self.results.append(result)
            note = " (re-run)" if attempt > 1 else ""
            late = result.publisher_late_p99_ms > PUBLISHER_LATE_MS
            if late:
                note += f" (publisher {result.publisher_late_p99_ms:.0f} ms late: machine busy)"
            log(f"[{time.monotonic() - self.started:6.0f}s] " + row(result) + note)
            if result.ok or result.error or attempt > retries:
                return result

    async def close(self) -> None:
        for target in [*self.targets.values(), *self.closing]:
            await target.close()
        for server in self.servers.values():
            err = server.stop()
            if "Traceback" in err:
                log(f"--- {server.name} stderr (tail) ---\n{err}")
        self.redis.stop()

    # --- sweep ----------------------------------------------------------------------------------------------
    async def sweep(self, protocol: str, s: int) -> dict[str, PointResult | None]:
        a = self.args
        last_pass: dict[str, int] = {}
        first_fail: dict[str, int] = {}
        for c in a.levels:
            active = [n for n in a.servers if n not in first_fail]
            if not active:
                break
            for name in active:
                result = await self.point(name, protocol, c, s, retries=a.retries)
                if result.ok:
                    last_pass[name] = c
                else:
                    first_fail[name] = c
        for name, failed in first_fail.items():
            low, high = last_pass.get(name, 0), failed
            for _ in range(a.bisect):
                if high - low <= 1:
                    break
                mid = (low + high) // 2
                if (await self.point(name, protocol, mid, s, retries=a.retries)).ok:
                    low = mid
                else:
                    high = mid
        self.capped = {name for name in a.servers if name not in first_fail}
        return {name: knee(self.results, name, protocol, s) for name in a.servers}

    async def sweeps(self) -> dict[str, Any]:
        a = self.args
        knees: dict[str, Any] = {}
        for protocol in a.protocols:
            for s in a.subs:
                log(f"\n== sweep: protocol {protocol}, S = {s} subscribers per conversation, C rising "
                    f"(hub subscribers: {a.clients} client) ==")
                log(HEADER)
                found = await self.sweep(protocol, s)
                knees[f"{protocol}/S={s}"] = found
                log(f"-- knees ({protocol}, S={s}):")
                for name, k in found.items():
                    capped = " - never failed: the knee is at least this (add --levels)" if name in self.capped else ""
                    log(f"   {name:<10} " + (f"{k.offered:>8.0f} msgs/s (C={k.conversations}, p99 {k.p99:.1f} ms, "
                                             f"server CPU {k.server_cpu:.0f}%){capped}" if k else
                                             "none (failed the first point)"))
                hub = found.get("hub")
                for peer in ("socketio", "websockets"):
                    other = found.get(peer)
                    if hub and other:
                        log(f"   hub knee / {peer} knee = {hub.offered / other.offered:.2f}")
                    elif hub and peer in a.servers:
                        log(f"   hub knee / {peer} knee = inf ({peer} failed its first point)")
                if hub:
                    knees[f"{protocol}/S={s}/half_knee"] = await self.half_knee(protocol, s, hub)
                cost = {name: efficiency(self.results, name, protocol, s) for name in a.servers}
                log("-- server CPU cost (median delivered msgs/s per server core): "
                    + ", ".join(f"{name} {value:.0f}" for name, value in cost.items()))
                for peer in ("socketio", "websockets"):
                    if "hub" in cost and peer in cost:
                        log(f"   hub / {peer} messages per core = {cost['hub'] / cost[peer]:.2f}")
                knees[f"{protocol}/S={s}/msgs_per_core"] = cost
        return knees

    async def half_knee(self, protocol: str, s: int, hub: PointResult) -> dict[str, Any]:
        """The hub's p99 at half its knee: C = knee C / 2 measured HALF_KNEE_RUNS times on its own; the median."""
        c = max(1, hub.conversations // 2)
        runs = [await self.point("hub", protocol, c, s) for _ in range(HALF_KNEE_RUNS)]
        p99s = [r.p99 for r in runs if not r.error]
        value = median(p99s) if p99s else float("nan")
        log(f"   hub p99 at half its knee (C={c}, {runs[0].offered:.0f} msgs/s, median of {len(runs)} runs): "
            f"{value:.1f} ms (runs: {', '.join(f'{p:.1f}' for p in p99s)})")
        return {"conversations": c, "offered": runs[0].offered, "p99_runs": p99s, "p99_median": value}

    async def slow(self) -> dict[str, Any]:
        """Same point without and with one stalled subscriber (A B A B): the others' p99."""
        a = self.args
        c, s = a.slow_point
        log(f"\n== slow subscriber: hub, {a.protocols[0]}, C={c}, S={s}; runs alternate without / with one extra "
            "connection that subscribes to every conversation's audio, then stops reading ==")
        log(HEADER)
        base: list[PointResult] = []
        stalled: list[PointResult] = []
        dropped = 0
        a.duration = max(a.duration, SLOW_DURATION)  # long enough to fill the kernel's socket buffers (MBs)
        for _ in range(a.slow_rounds):
            base.append(await self.point("hub", a.protocols[0], c, s))
            before = await self.hub_metric("voicehub_dropped_audio_frames_total")
            stalled.append(await self.point("hub", a.protocols[0], c, s, stall=1))
            dropped += int(await self.hub_metric("voicehub_dropped_audio_frames_total") - before)
        p99_base = median([r.p99 for r in base])
        p99_stall = median([r.p99 for r in stalled])
        change = (p99_stall - p99_base) / p99_base * 100
        log(f"-- others' p99: {p99_base:.1f} ms without, {p99_stall:.1f} ms with a stalled subscriber "
            f"({change:+.0f}%; median of {a.slow_rounds} runs each); the hub dropped {dropped} audio frames of the "
            "stalled subscriber (its bounded queue), none of the others' (loss column)")
        log("   runs without: " + ", ".join(f"{r.p99:.1f}" for r in base) + " ms; with: "
            + ", ".join(f"{r.p99:.1f}" for r in stalled) + " ms (p99 near 2 ms moves by 1-2 ms from run to run on this "
            "machine: read the change against that spread)")
        return {"point": [c, s], "p99_without": p99_base, "p99_with": p99_stall, "change_percent": change,
                "stalled_frames_dropped": dropped, "runs_without": [r.p99 for r in base],
                "runs_with": [r.p99 for r in stalled]}

    async def hub_metric(self, name: str) -> float:
        import httpx

        server = self.servers.get(("hub", ""))
        if server is None:
            return 0.0
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(server.url + "/metrics")).text
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


async def amain(args: argparse.Namespace) -> int:
    run = Run(args)
    payload: dict[str, Any] = {"args": {k: v for k, v in vars(args).items()}, "started": time.time()}
    try:
        if args.mode in ("sweep", "all"):
            payload["knees"] = await run.sweeps()
        if args.mode in ("slow", "all"):
            payload["slow"] = await run.slow()
        if args.mode in ("memory", "all"):
            payload["memory"] = await run_memory(run, args.memory_connections, log)
    finally:
        payload["points"] = run.results
        await run.close()
        path = save(payload)
        log(f"\nresults: {path}  ({time.monotonic() - run.started:.0f} s)")
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one protocol, S=10, short points (~2-3 minutes)")
    parser.add_argument("--mode", choices=("sweep", "slow", "memory", "all"), default=None,
                        help="default: sweep with --quick, all otherwise")
    parser.add_argument("--servers", default=",".join(PEERS), help="comma-separated subset of " + ",".join(PEERS))
    parser.add_argument("--protocols", help="comma-separated: msgpack,json")
    parser.add_argument("--subs", help="S values, comma-separated")
    parser.add_argument("--levels", help="C values, comma-separated, rising")
    parser.add_argument("--duration", type=float, help="measured seconds per point")
    parser.add_argument("--warmup", type=float, help="seconds per point before measuring")
    parser.add_argument("--bisect", type=int, help="bisection steps on C after a server's first failing point")
    parser.add_argument("--processes", type=int, default=3, help="subscriber processes per point")
    parser.add_argument("--clients", choices=("python", "node"), default="python",
                        help="hub subscribers: the project's Python client or the npm @microsoft/signalr client")
    parser.add_argument("--retries", type=int, help="re-runs of a failing point before it counts as failed")
    parser.add_argument("--slow-point", default="8x10", help="CxS of the slow-subscriber mode")
    parser.add_argument("--slow-rounds", type=int, help="runs without and with the stalled subscriber")
    parser.add_argument("--memory-connections", type=int, default=1000)
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    args.mode = args.mode or ("sweep" if args.quick else "all")
    args.servers = [s for s in args.servers.split(",") if s]
    args.protocols = args.protocols.split(",") if args.protocols else preset["protocols"]
    args.subs = [int(s) for s in args.subs.split(",")] if args.subs else preset["subs"]
    args.levels = [int(c) for c in args.levels.split(",")] if args.levels else preset["levels"]
    args.duration = args.duration or preset["duration"]
    args.warmup = args.warmup or preset["warmup"]
    args.bisect = preset["bisect"] if args.bisect is None else args.bisect
    args.retries = preset["retries"] if args.retries is None else args.retries
    args.slow_point = [int(x) for x in args.slow_point.lower().split("x")]
    args.slow_rounds = args.slow_rounds or (3 if args.quick else 7)
    return args


def main() -> int:
    import uvloop

    return uvloop.run(amain(parse()))


if __name__ == "__main__":
    sys.exit(main())
