"""One wrapper around every REST handler: method dispatch (405), authentication, scopes, rate limits,
problem bodies for every failure (also unexpected ones), a trace id and the rate-limit headers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.auth.principal import Principal
from hub.rest.auth_deps import authenticate, require_scope
from hub.rest.problems import Problem, new_trace_id, problem_response
from hub.rest.ratelimit import Decision, RateLimiter
from hub.rest.services import RestServices

log = logging.getLogger("hub.rest")

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
TRACE_HEADER = "X-Trace-Id"


@dataclass(frozen=True)
class Call:
    request: Request
    services: RestServices
    trace_id: str
    _principal: Principal | None

    @property
    def principal(self) -> Principal:
        assert self._principal is not None, "this endpoint is not authenticated"
        return self._principal

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    handler: Handler
    scope: str | None = None  # the scope the credential must hold
    auth: Literal["any", "api_key", "none"] = "any"
    policy: str | None = None  # rate-limit policy; default api-read for GET, api-write otherwise


@dataclass
class Dispatcher:
    services: RestServices
    limiter: RateLimiter

    def route(self, path: str, methods: dict[str, Endpoint], name: str | None = None) -> Route:
        async def endpoint(request: Request) -> Response:
            return await self.dispatch(request, methods)

        return Route(path, endpoint, methods=ALL_METHODS, name=name)

    def fallback(self, path: str) -> Route:
        """Answer 404 problems for unknown paths below `path` (e.g. /api/v1/{rest:path})."""
        return self.route(path, {})

    async def dispatch(self, request: Request, methods: dict[str, Endpoint]) -> Response:
        trace_id = new_trace_id()
        decision: Decision | None = None
        try:
            method = "GET" if request.method == "HEAD" else request.method
            endpoint = methods.get(method)
            if endpoint is None:
                decision = self._spend("anonymous", self._address(request))
                raise self._no_endpoint(request, methods)
            principal = None
            if endpoint.auth != "none":
                try:
                    principal = await authenticate(request, self.services, api_key_only=endpoint.auth == "api_key")
                except Problem:
                    decision = self._spend("anonymous", self._address(request))
                    raise
            policy = endpoint.policy or ("api-read" if method == "GET" else "api-write")
            key = self._address(request) if principal is None else f"{principal.tenant_id}/{principal.subject}"
            decision = self._spend(policy, key)
            if principal is not None and endpoint.scope is not None:
                require_scope(principal, endpoint.scope)
            response = await endpoint.handler(Call(request, self.services, trace_id, principal))
        except Problem as problem:
            response = problem_response(problem, trace_id)
        except Exception:
            log.exception("REST handler failed: %s %s (trace %s)", request.method, request.url.path, trace_id)
            response = problem_response(Problem(500, "The server failed to answer; the trace id identifies the failure."),
                                        trace_id)
        if decision is not None:
            for name, value in decision.headers().items():
                response.headers.setdefault(name, value)
        response.headers[TRACE_HEADER] = trace_id
        return response

    def _spend(self, policy: str, key: str) -> Decision | None:
        decision = self.limiter.take(policy, key)
        if decision is not None and not decision.allowed:
            raise decision.refusal()
        return decision

    @staticmethod
    def _address(request: Request) -> str:
        return "ip:" + (request.client.host if request.client else "unknown")

    @staticmethod
    def _no_endpoint(request: Request, methods: dict[str, Endpoint]) -> Problem:
        if not methods:
            return Problem(404, f"There is no resource at {request.url.path}.")
        allow = ", ".join(sorted(set(methods) | ({"HEAD"} if "GET" in methods else set())))
        return Problem(405, f"{request.method} is not allowed here; allowed: {allow}.", headers={"Allow": allow})
