"""The composition root: one Starlette app with the VoiceHub, the REST API, operations endpoints and,
when asked, the conformance app. Embedded (in-memory) components without a Redis URL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from hub.config import HubConfig
from hub.signalr.endpoint import HubEndpoint, HubRoute, HubStarlette
from hub.signalr.options import HubOptions

log = logging.getLogger("hub")


@dataclass
class Runtime:
    """What the running app holds; tests reach components through `app.state.runtime`."""

    config: HubConfig
    store: Any = None
    key_store: Any = None
    tokens: Any = None
    broker: Any = None
    voice: Any = None
    voice_endpoint: HubEndpoint | None = None
    redis: Any = None
    development_key: str | None = None
    endpoints: list[HubEndpoint] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    agent_stop: asyncio.Event | None = None


def _components(config: HubConfig, runtime: Runtime) -> None:
    from hub.auth.keystore import MemoryKeyStore, RedisKeyStore
    from hub.auth.tokens import TokenService
    from hub.store.memory import MemoryConversationStore
    from hub.store.redis_store import RedisConversationStore

    runtime.tokens = TokenService(config.jwt_secret)
    if config.redis_url:
        from redis.asyncio import Redis

        from hub.broker.redis_broker import RedisBroker

        runtime.redis = Redis.from_url(config.redis_url, socket_timeout=5, socket_connect_timeout=5)
        runtime.store = RedisConversationStore(runtime.redis, prefix=config.prefix)
        runtime.key_store = RedisKeyStore(runtime.redis, prefix=config.prefix)
        runtime.broker = RedisBroker(config.redis_url, prefix=config.prefix)
    else:
        from hub.broker.memory import MemoryBroker

        runtime.store = MemoryConversationStore()
        runtime.key_store = MemoryKeyStore()
        runtime.broker = MemoryBroker()


def create_app(config: HubConfig | None = None, *, conformance: bool | None = None) -> Starlette:
    config = config or HubConfig.from_env()
    if conformance is not None:
        config.conformance = conformance
    runtime = Runtime(config)
    _components(config, runtime)

    from hub.rest.app import rest_routes
    from hub.rest.services import RestServices
    from hub.voice.hub import voice_authenticator, voice_hub_factory
    from hub.voice.services import VoiceServices, VoiceSettings

    async def delete_history(tenant_id: str, conversation_id: str) -> None:
        await runtime.broker.delete_history(conversation_id)

    from hub.limits import tenant_limited

    settings = VoiceSettings(data_dir=config.data_dir, max_subscriptions=config.max_subscriptions,
                             max_subscriptions_per_tenant=config.max_subscriptions_per_tenant)
    runtime.voice = VoiceServices(runtime.store, runtime.broker, runtime.tokens, settings)
    options = HubOptions(max_connections=config.max_connections, handshake_timeout=config.handshake_timeout,
                         disconnect_timeout=config.disconnect_timeout)
    authenticate = tenant_limited(voice_authenticator(runtime.voice), lambda: voice_endpoint.manager,
                                  config.max_connections_per_tenant)
    voice_endpoint = HubEndpoint(voice_hub_factory(runtime.voice), options, authenticate=authenticate)
    runtime.voice_endpoint = voice_endpoint
    runtime.endpoints.append(voice_endpoint)
    rest = RestServices(store=runtime.store, key_store=runtime.key_store, token_service=runtime.tokens,
                        recording_secret=config.recording_secret.encode(), data_dir=Path(config.data_dir),
                        on_delete=delete_history)
    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        HubRoute("/hubs/voice", voice_endpoint),
        *rest_routes(rest),
    ]
    if config.conformance:
        from hub.conformance import conformance_endpoints, conformance_routes

        extra = conformance_routes()
        runtime.endpoints += conformance_endpoints(extra)
        routes += extra
    from hub.dashboard import dashboard_routes

    routes += dashboard_routes()
    app = HubStarlette(routes=routes, lifespan=_lifespan, middleware=_cors(config))
    app.state.runtime = runtime
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    runtime: Runtime = app.state.runtime
    config = runtime.config
    from hub.logredact import install as redact_tokens_in_logs

    redact_tokens_in_logs()  # after the server configured its loggers
    await runtime.broker.start()
    runtime.voice.start()  # caller-session lease renewal and sweep (hub/voice/sessions.py)
    if config.generated_secret:
        log.warning("VOICEHUB_JWT_SECRET is not set: a random development secret was generated; tokens will not "
                    "survive a restart and other nodes will refuse them. Set VOICEHUB_JWT_SECRET in production.")
    from hub.auth.keys import ensure_bootstrap_key, ensure_development_key

    if config.bootstrap_key:
        await ensure_bootstrap_key(runtime.key_store, config.bootstrap_key)
    elif not config.redis_url:
        runtime.development_key = await ensure_development_key(runtime.key_store)
        if runtime.development_key:
            print(f"Development API key (every scope, tenant ten_default): {runtime.development_key}", flush=True)
    if config.agent == "echo":
        from hub.agent.echo import run_echo_agent

        runtime.agent_stop = asyncio.Event()
        runtime.tasks.append(asyncio.get_running_loop().create_task(run_echo_agent(runtime.broker, runtime.agent_stop)))
    if config.demo > 0:
        from hub.simulate.demo import run_demo

        runtime.tasks.append(asyncio.get_running_loop().create_task(run_demo(runtime, config.demo)))
    try:
        yield
    finally:
        for endpoint in runtime.endpoints:
            await endpoint.manager.drain(config.drain_grace)
        if runtime.agent_stop is not None:
            runtime.agent_stop.set()
        for task in runtime.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await runtime.voice.close()
        await runtime.broker.close()
        if runtime.redis is not None:
            await runtime.redis.aclose()


def _cors(config: HubConfig) -> list[Middleware]:
    """CORS is closed unless origins are configured (--cors-origins / VOICEHUB_CORS_ORIGINS); `*` allows any origin
    without credentials. The dashboard served by the hub itself is same-origin and needs none."""
    if not config.cors_origins:
        return []
    from starlette.middleware.cors import CORSMiddleware

    any_origin = "*" in config.cors_origins
    return [Middleware(CORSMiddleware, allow_origins=["*"] if any_origin else list(config.cors_origins),
                       allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
                       allow_headers=["Authorization", "Content-Type", "X-Requested-With", "X-SignalR-User-Agent"],
                       expose_headers=["X-Trace-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                                       "X-RateLimit-Policy", "Retry-After"],
                       allow_credentials=not any_origin, max_age=600)]


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    broker_ready = bool(getattr(runtime.broker, "ready", True))
    draining = any(e.manager.draining for e in runtime.endpoints)
    ok = broker_ready and not draining
    body = {"status": "ready" if ok else "not_ready", "broker": "ok" if broker_ready else "unavailable",
            "draining": draining}
    return JSONResponse(body, status_code=200 if ok else 503)


async def metrics(request: Request) -> Response:
    from hub.metrics import render_metrics

    return PlainTextResponse(render_metrics(request.app.state.runtime), media_type="text/plain; version=0.0.4")
