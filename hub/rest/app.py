"""rest_routes(services): every REST route of VoiceHub, ready to mount in the Starlette app."""

from __future__ import annotations

from starlette.routing import BaseRoute

from hub.rest.auth_routes import auth_endpoints
from hub.rest.conversations import conversation_endpoints
from hub.rest.endpoint import Dispatcher, Endpoint
from hub.rest.keys_routes import key_endpoints
from hub.rest.openapi import openapi_endpoints
from hub.rest.ratelimit import RateLimiter
from hub.rest.recordings import recording_endpoints
from hub.rest.services import RestServices


def rest_endpoints() -> dict[str, dict[str, Endpoint]]:
    """Path -> method -> endpoint, for every REST route (openapi.json describes exactly these paths)."""
    return {**conversation_endpoints(), **recording_endpoints(), **auth_endpoints(), **key_endpoints(), **openapi_endpoints()}


def rest_routes(services: RestServices) -> list[BaseRoute]:
    """The routes, plus a last catch-all under /api/v1 that answers unknown paths with a 404 problem.

    Rate-limit buckets belong to the returned routes (one RateLimiter per call, in this process).
    """
    limiter = RateLimiter(services.rate_limits, lambda: services.clock().timestamp())
    dispatcher = Dispatcher(services, limiter)
    routes: list[BaseRoute] = [dispatcher.route(path, methods) for path, methods in rest_endpoints().items()]
    routes.append(dispatcher.fallback("/api/v1/{rest:path}"))
    return routes
