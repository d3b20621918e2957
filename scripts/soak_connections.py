"""Connection churn soak: thousands of hub connections opening and closing for `--duration` seconds (default 10 min)
against one hub process, printing the hub's RSS over time; it stops by itself and says whether memory stayed bounded.

    .venv/bin/python scripts/soak_connections.py [--duration 600] [--connections 2000] [--negotiates 10000]

Load (all on loopback, one client process):
- first, `--negotiates` negotiates that never connect (they must be reaped after the disconnect timeout);
- `--callers` live calls speaking in real time (100 ms chunks), kept for the whole run;
- `--connections` monitor connections kept open, each living 30-90 s then replaced: 70 % WebSocket (JSON or
  MessagePack) following every live call with SubscribeAll (final turns and lifecycle), 10 % WebSocket subscribed to
  one live call (turns, partials and AudioLevel 5 times a second), 10 % long polling, 10 % negotiated and abandoned.
  (Subscribing most connections to calls makes the one client process, not the hub, the bottleneck: every
  subscription receives AudioLevel 5 times a second.)

Verdict: PASS when every abandoned negotiate was reaped, fewer than 5 % of the connections failed, and the hub's RSS
at the end of the run is within `--growth` MB of its RSS after the warm-up (one lifetime of churn).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.client.signalr import HubClient, HubError  # noqa: E402
from hub.client.voice import VoiceCaller  # noqa: E402
from tests.reliability_rig import HubProcess, SpeakingCaller, token  # noqa: E402

NEGOTIATE = "/hubs/voice/negotiate?negotiateVersion=1"


class Soak:
    def __init__(self, hub: HubProcess, tok: str, args: argparse.Namespace) -> None:
        self.hub, self.token, self.args = hub, tok, args
        self.process = psutil.Process(hub.proc.pid)
        self.conversations: list[str] = []
        self.opened = 0
        self.closed = 0
        self.errors: dict[str, int] = {}
        self.live = 0
        self.http = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=1000),
                                      headers={"Authorization": f"Bearer {tok}"})
        self.stop = asyncio.Event()

    def rss_mb(self) -> float:
        return self.process.memory_info().rss / 2**20

    async def metrics(self) -> dict[str, float]:
        """Open and pending connections from /metrics (-1 when the hub did not answer in time)."""
        try:
            text = (await self.http.get(self.hub.base + "/metrics", timeout=10)).text
        except httpx.HTTPError:
            self.error("metrics unavailable")
            return {"open": -1.0, "pending": -1.0}
        connections = sum(float(v) for v in re.findall(r"^voicehub_connections\{[^}]*\} (\S+)$", text, re.MULTILINE))
        pending = re.search(r"^voicehub_pending_connections (\S+)$", text, re.MULTILINE)
        return {"open": connections, "pending": float(pending.group(1)) if pending else 0.0}

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    async def abandoned_negotiates(self, count: int) -> None:
        sem = asyncio.Semaphore(100)

        async def one() -> None:
            async with sem:
                try:
                    answer = await self.http.post(self.hub.base + NEGOTIATE)
                    if answer.status_code != 200:
                        self.error(f"negotiate {answer.status_code}")
                except httpx.HTTPError as exc:
                    self.error(type(exc).__name__)

        before = self.rss_mb()
        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(count)))
        peak = self.rss_mb()
        pending = (await self.metrics())["pending"]
        print(f"{count} negotiates that never connect: {time.monotonic() - started:.1f} s, {pending:.0f} pending, "
              f"RSS {before:.0f} -> {peak:.0f} MB", flush=True)
        reap_started = time.monotonic()
        for _ in range(60):
            if (await self.metrics())["pending"] <= 0:
                break
            await asyncio.sleep(1)
        left = (await self.metrics())["pending"]
        print(f"  reaped in {time.monotonic() - reap_started:.0f} s ({left:.0f} left), RSS {self.rss_mb():.0f} MB",
              flush=True)
        self.reaped = left == 0

    async def member(self, slot: int) -> None:
        """One slot of the target population: a connection after another until the run stops."""
        await asyncio.sleep(random.uniform(0, self.args.ramp))
        while not self.stop.is_set():
            life = random.uniform(30, 90)
            kind = random.random()
            if self.args.only is not None:  # one kind of connection only (to find what costs memory)
                kind = {"subscribe-all": 0.5, "subscribe-one": 0.75, "long-polling": 0.85, "abandoned": 0.95}[self.args.only]
            try:
                if kind < 0.8:
                    await self.websocket(life, msgpack=kind < 0.3, subscribe_one=kind >= 0.7)
                elif kind < 0.9:
                    await self.long_poll(life)
                else:
                    answer = await self.http.post(self.hub.base + NEGOTIATE)  # abandoned: the hub reaps it
                    self.opened += 1
                    if answer.status_code != 200:
                        self.error(f"negotiate {answer.status_code}")
                    await self.sleep(min(life, 20))
            except (HubError, OSError, httpx.HTTPError, TimeoutError) as exc:
                self.error(f"{type(exc).__name__}: {str(exc)[:60]}")
                await self.sleep(1)

    async def sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except TimeoutError:
            pass

    async def websocket(self, life: float, *, msgpack: bool, subscribe_one: bool) -> None:
        client = await HubClient.connect(self.hub.base + "/hubs/voice", token=self.token, msgpack=msgpack)
        self.opened += 1
        self.live += 1
        try:
            if subscribe_one and self.conversations:
                await client.invoke("Subscribe", random.choice(self.conversations), {"partials": True})
            else:
                await client.invoke("SubscribeAll", {}, {"partials": False})
            await self.sleep(life)
        finally:
            self.live -= 1
            self.closed += 1
            await client.close()

    async def long_poll(self, life: float) -> None:
        negotiated = (await self.http.post(self.hub.base + NEGOTIATE)).json()
        url = f"{self.hub.base}/hubs/voice?id={negotiated['connectionToken']}"
        self.opened += 1
        self.live += 1
        try:
            await self.http.get(url)
            await self.http.post(url, content=b'{"protocol":"json","version":1}\x1e')
            ends = time.monotonic() + life
            stopped = asyncio.ensure_future(self.stop.wait())
            try:
                while time.monotonic() < ends and not self.stop.is_set():
                    poll = asyncio.ensure_future(self.http.get(url, timeout=httpx.Timeout(30, read=120)))  # polls: 90 s
                    await asyncio.wait({poll, stopped}, timeout=ends - time.monotonic(),
                                       return_when=asyncio.FIRST_COMPLETED)
                    if not poll.done():
                        poll.cancel()
                        break
                    if poll.result().status_code != 200:
                        self.error(f"poll {poll.result().status_code}")
                        return
            finally:
                stopped.cancel()
            await self.http.delete(url)
        finally:
            self.live -= 1
            self.closed += 1


async def run(args: argparse.Namespace) -> int:
    env = {"VOICEHUB_MAX_CONNECTIONS": str(args.connections + args.negotiates + 1000),
           "VOICEHUB_MAX_CONNECTIONS_PER_TENANT": str(args.connections + args.negotiates + 1000),
           "VOICEHUB_MAX_SUBSCRIPTIONS_PER_TENANT": str(args.connections * (args.callers + 2) + 1000)}
    with HubProcess(None, "--agent", "echo", "--log-level", "warning", env=env) as hub:
        tok = await token(hub.base)
        soak = Soak(hub, tok, args)
        print(f"hub RSS at start: {soak.rss_mb():.0f} MB", flush=True)
        soak.reaped = True
        if args.negotiates:
            await soak.abandoned_negotiates(args.negotiates)
        callers = [await VoiceCaller.connect(hub.base, tok, agent_id="agt_soak") for _ in range(args.callers)]
        speakers = [SpeakingCaller(c, i) for i, c in enumerate(callers)]
        for speaker in speakers:
            speaker.start()
        soak.conversations = [c.conversation_id for c in callers]
        members = [asyncio.ensure_future(soak.member(i)) for i in range(args.connections)]
        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        low_open = 0
        try:
            while time.monotonic() - started < args.duration:
                await asyncio.sleep(args.every)
                elapsed = time.monotonic() - started
                numbers = await soak.metrics()
                rss = soak.rss_mb()
                samples.append((elapsed, rss))
                if elapsed > args.ramp + 10 and numbers["open"] < 0.8 * 0.9 * args.connections:
                    low_open += 1
                print(f"t={elapsed:5.0f}s  RSS {rss:6.1f} MB  open {numbers['open']:5.0f}  pending {numbers['pending']:4.0f}"
                      f"  opened {soak.opened:6d}  closed {soak.closed:6d}  errors {soak.errors or 0}",
                      flush=True)
        finally:
            soak.stop.set()
            await asyncio.gather(*members, return_exceptions=True)
            for speaker in speakers:
                await speaker.stop()
            for caller in callers:
                await caller.close()
        await asyncio.sleep(1)
        end_rss = soak.rss_mb()
        settled = await soak.metrics()
        await soak.http.aclose()
    warm = [rss for t, rss in samples if t >= args.ramp + 90] or [rss for _, rss in samples]
    baseline, final = warm[0], warm[-1]
    growth = final - baseline
    failures = sum(soak.errors.values())
    ok = soak.reaped and growth <= args.growth and failures <= 0.05 * max(1, soak.opened)
    print(f"connections opened {soak.opened}, errors {soak.errors or 'none'}; samples below 72 % of the target: {low_open}")
    print(f"RSS after warm-up {baseline:.0f} MB, at the end {final:.0f} MB (growth {growth:+.0f} MB, allowed "
          f"{args.growth:.0f}), max {max(r for _, r in samples):.0f} MB; after the clients left: {end_rss:.0f} MB, "
          f"{settled['open']:.0f} open")
    print("RESULT: " + ("PASS, memory bounded" if ok else "FAIL"))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--negotiates", type=int, default=10_000)
    parser.add_argument("--callers", type=int, default=5)
    parser.add_argument("--ramp", type=float, default=120.0, help="seconds over which the connections first open")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--growth", type=float, default=50.0, help="MB of RSS growth allowed after the warm-up")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=("subscribe-all", "subscribe-one", "long-polling", "abandoned"),
                        help="every connection of one kind")
    args = parser.parse_args()
    random.seed(args.seed)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
