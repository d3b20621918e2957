"""Real processes for the reliability, scale-out and security tests: hub nodes (`python -m hub serve`), the
echo agent (`python -m hub agent`), a Redis that persists what it acknowledged, and a monitor that resumes.

Every node shares one JWT secret and a bootstrap API key, as a production deployment behind a load balancer does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import httpx

from hub.client.signalr import HubClient, HubError
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tests.support.timing import eventually_sync, scaled

SECRET = "reliability-rig-secret-0123456789abcdef0123"
BOOTSTRAP_KEY = "vsnp_live_" + "Rel1abil1tyRigKey" * 2
TENANT = "ten_default"
FUZZ_SCALE = int(os.environ.get("VOICEHUB_FUZZ_SCALE", "1"))
"""Multiplies the number of generated cases of the fuzz tests (scripts/soak_fuzz.py raises it for long runs)."""


class PersistentRedis(RedisServer):
    """redis-server with an fsync-always append-only file: a kill loses nothing it acknowledged."""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.dir), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        eventually_sync(self._up, 10, "redis-server to answer PING")


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=1.0).status_code
    except httpx.HTTPError:
        return 0


class HubProcess:
    """`python -m hub serve` on a free port; its stdout and stderr go to a file read by `log()`."""

    def __init__(self, redis_url: str | None = None, *args: str, env: dict[str, str] | None = None,
                 drain_grace: float = 3.0) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(prefix="voicehub-node-"))
        command = [sys.executable, "-m", "hub", "serve", "--port", str(self.port), "--data-dir", str(self.dir / "data"),
                   "--log-level", "info", *args]
        if redis_url:
            command += ["--redis-url", redis_url]
        environment = {**os.environ, "VOICEHUB_JWT_SECRET": SECRET, "VOICEHUB_BOOTSTRAP_KEY": BOOTSTRAP_KEY,
                       "VOICEHUB_DRAIN_GRACE": str(drain_grace), **(env or {})}
        self._log_path = self.dir / "hub.log"
        self._log: IO[bytes] = open(self._log_path, "wb")  # noqa: SIM115  (closed in stop)
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=environment)
        try:
            eventually_sync(lambda: _get(self.base + "/healthz") == 200 or self.proc.poll() is not None, 20,
                            "the hub to answer /healthz")
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited at start:\n{self.log()}")
        except BaseException:
            self.stop()
            raise

    def healthz(self) -> int:
        return _get(self.base + "/healthz")

    def readyz(self) -> int:
        return _get(self.base + "/readyz")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, seconds: float = 15.0) -> int:
        return self.proc.wait(scaled(seconds))

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self._log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(scaled(15))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()

    def __enter__(self) -> HubProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class AgentProcess:
    """The reference echo agent as its own process; ready once it listens to the lifecycle channel."""

    def __init__(self, redis_url: str, prefix: str = "voicehub") -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "hub", "agent", "--redis-url", redis_url],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        client = redis.Redis.from_url(redis_url)
        try:
            def listening() -> bool:
                counts = client.pubsub_numsub(f"{prefix}:conversations")
                return bool(counts) and int(counts[0][1]) > 0

            eventually_sync(listening, 20, "the echo agent to listen")
        except BaseException:
            self.stop()
            raise
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(scaled(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> AgentProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def token(base: str, scopes: list[str] | None = None, key: str = BOOTSTRAP_KEY) -> str:
    from hub.client.voice import fetch_token

    return await fetch_token(base, key, scopes=scopes)


async def history_finals(redis_url: str, conversation_id: str) -> list[dict[str, Any]]:
    """Final transcript turns in the conversation's Redis history, in seq order (the ground truth)."""
    from hub.publisher import connect

    broker = await connect(redis_url)
    try:
        history = await broker.history(conversation_id, 0)
    finally:
        await broker.close()
    return [e for e in history.events if e.get("type") == "transcript" and e.get("isFinal")]


class ResumingMonitor:
    """A monitor with the reconnect logic a dashboard needs: on `Gap` it re-subscribes with `fromSeq`; on a
    `Close` with `allowReconnect` it connects to the next node and resumes every conversation from the highest
    `seq` it holds. It keeps every final `TranscriptTurn` it was sent (`arrivals`, duplicates included)."""

    def __init__(self, bases: list[str], token: str, conversation_ids: list[str], *,
                 reconnect_on_drop: bool = False) -> None:
        self.bases = bases
        self.reconnect_on_drop = reconnect_on_drop  # also after a drop without Close (a killed node)
        self.node = 0
        self.token = token
        self.conversation_ids = list(conversation_ids)
        self.arrivals: dict[str, list[int]] = {c: [] for c in conversation_ids}
        self.highest: dict[str, int] = {c: 0 for c in conversation_ids}
        self.gaps: list[dict[str, Any]] = []
        self.closes: list[tuple[str | None, bool]] = []
        self.reconnects = 0
        self.client: HubClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._connected = asyncio.Event()
        self.errors: list[str] = []

    def _on_turn(self, arguments: list[Any]) -> None:
        turn = arguments[0]
        conversation_id = turn.get("conversationId")
        if conversation_id in self.arrivals and turn.get("isFinal"):
            self.arrivals[conversation_id].append(int(turn["seq"]))
        self._seq(arguments)

    def _seq(self, arguments: list[Any]) -> None:
        event = arguments[0]
        conversation_id = event.get("conversationId")
        if conversation_id in self.highest and isinstance(event.get("seq"), int):
            self.highest[conversation_id] = max(self.highest[conversation_id], event["seq"])

    def _on_gap(self, arguments: list[Any]) -> None:
        gap = arguments[0]
        self.gaps.append(gap)
        if gap.get("reason") in ("broker_outage", "history_trimmed") or "droppedFrames" not in gap:
            self._spawn(self._resubscribe(gap["conversationId"], int(gap["fromSeq"]) - 1))

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resubscribe(self, conversation_id: str, from_seq: int) -> None:
        client = self.client
        if client is None:
            return
        try:
            await client.invoke("Subscribe", conversation_id, {"partials": False, "fromSeq": max(0, from_seq)})
        except HubError as exc:
            self.errors.append(f"resubscribe {conversation_id}: {exc}")

    async def connect(self) -> None:
        handlers = {"TranscriptTurn": self._on_turn, "Gap": self._on_gap, "ConversationStarted": self._seq,
                    "ConversationUpdated": self._seq, "ConversationEnded": self._seq}
        client = await HubClient.connect(self.bases[self.node % len(self.bases)] + "/hubs/voice", token=self.token,
                                         handlers=handlers)
        self.client = client
        for conversation_id in self.conversation_ids:
            options: dict[str, Any] = {"partials": False}
            if self.highest[conversation_id] > 0:
                options["fromSeq"] = self.highest[conversation_id]
            await client.invoke("Subscribe", conversation_id, options)
        self._spawn(self._watch_close(client))
        self._connected.set()

    async def _watch_close(self, client: HubClient) -> None:
        await client.closed.wait()
        self.closes.append((client.close_error, client.allow_reconnect))
        if self._stopping or not (client.allow_reconnect or self.reconnect_on_drop):
            return
        self._connected.clear()
        await client.close()
        self.node += 1
        self.reconnects += 1
        deadline = time.monotonic() + scaled(10)
        while time.monotonic() < deadline:
            try:
                await self.connect()
                return
            except (HubError, OSError) as exc:
                self.errors.append(f"reconnect: {exc}")
                self.node += 1
                await asyncio.sleep(0.2)

    async def connected(self, seconds: float = 10.0) -> None:
        await asyncio.wait_for(self._connected.wait(), scaled(seconds))

    async def close(self) -> None:
        self._stopping = True
        if self.client is not None:
            await self.client.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass

    def finals(self, conversation_id: str) -> list[int]:
        """Distinct final-turn seqs received, sorted."""
        return sorted(set(self.arrivals[conversation_id]))


class SpeakingCaller:
    """A caller session that speaks (synthetic syllables, then a pause) in 100 ms chunks at real time until
    stopped; it counts what it sent and the `Error` events it got."""

    CHUNK = 3200  # 100 ms of PCM16 16 kHz

    def __init__(self, caller: Any, index: int) -> None:
        from hub.simulate.speech import synthetic_phrase

        self.caller = caller
        speech = synthetic_phrase(6, seed=index)
        script = speech + b"\0" * 25600  # 0.8 s pause: the echo agent answers
        script += b"\0" * (-len(script) % self.CHUNK)
        self.chunks = [script[i:i + self.CHUNK] for i in range(0, len(script), self.CHUNK)]
        self.sent = 0
        self.send_failures = 0
        self.sent_at: list[float] = []
        self._stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        next_at = time.monotonic()
        n = 0
        while not self._stop.is_set():
            try:
                await self.caller.send_audio(self.chunks[n % len(self.chunks)])
                self.sent += 1
                self.sent_at.append(time.monotonic())
            except HubError:
                self.send_failures += 1
            n += 1
            next_at = max(next_at + 0.1, time.monotonic() - 0.3)  # after a stall, no burst past 3x real time
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def stop(self) -> None:
        self._stop.set()
        if self.task is not None:
            await _bounded(self.task, "the speaking caller's send_audio")

    def errors(self, code: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.caller.log.of("Error") if code is None or e.get("code") == code]


async def _bounded(task: asyncio.Task[None], what: str) -> None:
    """Wait for a helper's task to end; a hang fails the test naming what hung, instead of the suite's timeout."""
    try:
        await asyncio.wait_for(asyncio.shield(task), scaled(15))
    except TimeoutError:
        where: list[str] = []
        awaiting: Any = task.get_coro()
        while getattr(awaiting, "cr_frame", None) is not None:  # the chain of awaits, outermost first
            where.append(f"  {awaiting.cr_code.co_filename}:{awaiting.cr_frame.f_lineno} in {awaiting.cr_code.co_name}")
            awaiting = awaiting.cr_await
        where.append(f"  awaiting {awaiting!r}")
        task.cancel()
        raise AssertionError(f"{what} did not return within {scaled(15):.0f} s; it was at:\n" + "\n".join(where)) from None


class TurnPipeline:
    """An agent pipeline (besides the echo agent) that publishes a final turn per conversation every `every`
    seconds through Redis, retrying while Redis is away; `acked` holds each seq Redis acknowledged."""

    def __init__(self, redis_url: str, conversation_ids: list[str], every: float = 0.1, text_bytes: int = 0) -> None:
        self.redis_url = redis_url
        self.padding = " " + "x" * text_bytes if text_bytes else ""
        self.conversation_ids = conversation_ids
        self.every = every
        self.acked: dict[str, list[int]] = {c: [] for c in conversation_ids}
        self.failures = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.broker: Any = None

    async def start(self) -> None:
        from hub.publisher import connect

        self.broker = await connect(self.redis_url)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _one(self, conversation_id: str, n: int) -> None:
        from hub.publisher import Publisher

        publisher = Publisher(self.broker, conversation_id)
        while True:
            try:
                seq = await publisher.send_transcript("agent", f"pipeline turn {n}{self.padding}", is_final=True,
                                                      start_time=n * self.every, end_time=(n + 1) * self.every)
                self.acked[conversation_id].append(seq)
                return
            except Exception:
                self.failures += 1
                if self._stop.is_set():
                    return
                await asyncio.sleep(0.05)

    async def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            await asyncio.gather(*(self._one(c, n) for c in self.conversation_ids))
            n += 1
            await asyncio.sleep(self.every)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await _bounded(self._task, "the pipeline's publish")
        if self.broker is not None:
            broker, self.broker = self.broker, None
            await broker.close()

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.acked.values())
