"""Processes of a benchmark run: a private redis-server, the servers under test, helper processes with a line protocol."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from bench.common import free_port

SCRIPTS = Path(__file__).resolve().parent.parent
ROOT = SCRIPTS.parent
JWT_SECRET = "bench-fanout-secret-not-for-production"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SCRIPTS), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["VOICEHUB_JWT_SECRET"] = JWT_SECRET
    return env


def _wait_port(port: int, seconds: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {seconds:.0f} s")


class RedisServer:
    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir, "--protected-mode", "yes",
                                      "--client-output-buffer-limit", "pubsub 64mb 32mb 60"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, 10, self.proc)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.ps = psutil.Process(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    """A server under test in its own process: the hub, the socketio peer or the websockets peer."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([*argv, "--port", str(self.port)], env=child_env(), cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        _wait_port(self.port, 20, self.proc)
        self.ps = psutil.Process(self.proc.pid)

    def cpu_seconds(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> str:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.seek(0)
        err = self.log.read().decode(errors="replace")[-2000:]
        self.log.close()
        return err


def hub_server(redis_url: str) -> Server:
    return Server("hub", [sys.executable, "-m", "hub", "serve", "--redis-url", redis_url, "--agent", "none",
                          "--log-level", "warning"])


def socketio_server(redis_url: str, serializer: str) -> Server:
    return Server("socketio", [sys.executable, "-m", "bench.peers.socketio_server", "--redis-url", redis_url,
                               "--serializer", serializer])


def ws_server(redis_url: str) -> Server:
    return Server("websockets", [sys.executable, "-m", "bench.peers.ws_server", "--redis-url", redis_url])


class Helper:
    """A helper process (publisher, subscriber) speaking lines: it prints `WORD payload`, reads commands on stdin."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.ps = psutil.Process(proc.pid)

    @classmethod
    async def start(cls, module: str, config: dict[str, Any]) -> Helper:
        """`python -m module`, or with module "node:<script>" that script under node (npm client)."""
        env = child_env()
        if module.startswith("node:"):
            node = shutil.which("node")
            if node is None:
                raise RuntimeError("node is not installed (needed for --clients node)")
            env["NODE_PATH"] = str(ROOT / "tests" / "node" / "node_modules")
            argv = [node, str(SCRIPTS / "bench" / module[5:])]
        else:
            argv = [sys.executable, "-m", module]
        proc = await asyncio.create_subprocess_exec(
            *argv, json.dumps(config), env=env, cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024)
        return cls(proc)

    async def expect(self, word: str, seconds: float) -> str:
        assert self.proc.stdout is not None
        async with asyncio.timeout(seconds):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    err = b""
                    if self.proc.stderr is not None:
                        err = await self.proc.stderr.read()
                    raise RuntimeError(f"helper exited before {word}: {err.decode(errors='replace')[-1500:]}")
                if line.startswith(word):
                    return line[len(word):].strip()

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.proc.stdin.write((line + "\n").encode())

    def cpu_seconds(self) -> float:
        try:
            times = self.ps.cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    async def finish(self, seconds: float = 10) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), seconds)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self.proc.stdout is not None:
            with contextlib.suppress(Exception):
                await self.proc.stdout.read()
        if self.proc.stderr is not None:
            with contextlib.suppress(Exception):
                await self.proc.stderr.read()
