"""The whole app (hub.app.create_app) under a real uvicorn server on a free loopback port, in the test's
event loop, with tokens minted for any tenant and scopes. Memory components, or Redis with `redis_url`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from hub.app import Runtime, create_app
from hub.auth.principal import ALL_SCOPES, DEFAULT_TENANT, Principal
from hub.config import HubConfig
from tests.support.ports import free_port
from tests.support.timing import scaled

SECRET = "voicehub-test-secret-0123456789abcdef0123456789"


@dataclass
class VoiceRig:
    base: str
    runtime: Runtime

    def token(self, scopes: set[str] | frozenset[str] = ALL_SCOPES, tenant: str = DEFAULT_TENANT,
              conversation_id: str | None = None, subject: str = "usr_test") -> str:
        principal = Principal(subject, tenant, frozenset(scopes), conversation_id, method="jwt")
        token: str = self.runtime.tokens.issue(principal, 600)
        return token


@contextlib.asynccontextmanager
async def voice_hub(redis_url: str | None = None, *, agent: str = "echo", prefix: str | None = None,
                    tmp_path: Any = None, **settings: Any) -> AsyncIterator[VoiceRig]:
    port = free_port()
    config = HubConfig(port=port, redis_url=redis_url, agent=agent, jwt_secret=SECRET, drain_grace=1.0,
                       data_dir=str(tmp_path) if tmp_path is not None else "data",
                       prefix=prefix or f"vhtest{port}")
    app = create_app(config)
    runtime: Runtime = app.state.runtime
    for key, value in settings.items():
        setattr(runtime.voice.settings, key, value)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           ws_max_size=1024 * 1024))
    task = asyncio.get_running_loop().create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + scaled(10)
    while not server.started:
        if task.done():
            task.result()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the hub did not start")
        await asyncio.sleep(0.01)
    try:
        yield VoiceRig(f"http://127.0.0.1:{port}", runtime)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, scaled(15))


MONITOR_SCOPES = frozenset({"monitor:read", "monitor:listen", "monitor:control"})


def backend_url(kind: str, request: Any) -> str | None:
    """The Redis URL for kind "redis" (a flushed shared server), None for the in-memory broker."""
    return str(request.getfixturevalue("redis_url")) if kind == "redis" else None


async def open_call(rig: VoiceRig, *, tenant: str = DEFAULT_TENANT, agent_id: str = "agt_test",
                    metadata: dict[str, Any] | None = None, msgpack: bool = False) -> Any:
    """A connected VoiceCaller (a live conversation owned by this node)."""
    from hub.client.voice import VoiceCaller

    return await VoiceCaller.connect(rig.base, rig.token({"voice:session"}, tenant=tenant), agent_id=agent_id,
                                     metadata=metadata, msgpack=msgpack)


async def open_monitor(rig: VoiceRig, *, scopes: frozenset[str] = MONITOR_SCOPES, tenant: str = DEFAULT_TENANT,
                       conversation_id: str | None = None, msgpack: bool = False, subject: str = "usr_sup") -> Any:
    from hub.client.voice import VoiceMonitor

    return await VoiceMonitor.connect(rig.base, rig.token(scopes, tenant=tenant, conversation_id=conversation_id,
                                                          subject=subject), msgpack=msgpack)


def publisher(rig: VoiceRig, conversation_id: str) -> Any:
    """A pipeline's Publisher on the rig's own broker: deterministic transcript events for a conversation."""
    from hub.publisher import Publisher

    return Publisher(rig.runtime.broker, conversation_id)


# --- real processes (end-to-end tests) ---------------------------------------------------------------------------
E2E_ENV = {"VOICEHUB_JWT_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}


def mint_token(scopes: set[str] | frozenset[str] = ALL_SCOPES, *, tenant: str = DEFAULT_TENANT,
               subject: str = "usr_test", conversation_id: str | None = None) -> str:
    """A hub JWT signed with the secret the test's hub processes share."""
    from hub.auth.tokens import TokenService

    token: str = TokenService(SECRET).issue(Principal(subject, tenant, frozenset(scopes), conversation_id,
                                                      method="jwt"), 600)
    return token


@contextlib.contextmanager
def hub_processes(*commands: list[str], ready_paths: list[str | None]) -> Iterator[list[str]]:
    """Start `python -m hub <command>` processes together (same JWT secret); yield their base URLs (None-path ones
    get ""), once each answers its ready path; terminate them all after."""
    import os
    import subprocess
    import sys

    import httpx

    from tests.support.timing import eventually_sync

    procs: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    try:
        for command in commands:
            port = free_port()
            args = [a.replace("{port}", str(port)) for a in command]
            procs.append(subprocess.Popen([sys.executable, "-m", "hub", *args], env={**os.environ, **E2E_ENV},
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            bases.append(f"http://127.0.0.1:{port}" if "{port}" in " ".join(command) else "")
        for proc, base, path in zip(procs, bases, ready_paths, strict=True):
            if path is None:
                continue

            def up(base: str = base, path: str = path, proc: subprocess.Popen[bytes] = proc) -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"hub process exited with {proc.returncode}")
                try:
                    return httpx.get(base + path, timeout=0.5).status_code == 200
                except httpx.HTTPError:
                    return False

            eventually_sync(up, 15, f"{base}{path}")
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
