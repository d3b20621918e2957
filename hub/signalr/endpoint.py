"""One hub endpoint as an ASGI route: `POST {hub}/negotiate` and `{hub}` for all three transports.

Paths and query keys match case-insensitively, as in ASP.NET Core. Status codes and texts follow
signalr-protocol.md 1.1-1.5.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from hub.signalr.context import HubConnectionContext, State
from hub.signalr.hub import Hub
from hub.signalr.inbound import receive as hub_receive
from hub.signalr.manager import ConnectionManager
from hub.signalr.options import HubOptions
from hub.signalr.transports.longpolling import NO_CACHE, poll
from hub.signalr.transports.sse import run_sse
from hub.signalr.transports.websocket import run_websocket, take_over
from protocol.negotiate import NegotiateResponse, NegotiateVersionError, Transport, negotiate_error, select_version

log = logging.getLogger("hub.signalr")

MAX_POST_BYTES = 1024 * 1024
EARLY_BODY = "_early_body"
"""Bytes POSTed before the receive leg (first poll or SSE GET) attached: .NET buffers them in the connection's
pipe; signalrcore's long polling sends its handshake that way. Fed to the connection once the leg attaches."""


class Unauthorized(Exception):
    """Raised by an endpoint's `authenticate` hook: the request gets 401 with an empty body (or `status` with
    `text`, e.g. 429 when a limit is reached)."""

    def __init__(self, status: int = 401, text: str = "") -> None:
        super().__init__(status)
        self.status = status
        self.text = text


Authenticate = Callable[[HTTPConnection], Awaitable[Any]]
DataHandler = Callable[[HubConnectionContext, bytes], Awaitable[bool]]


def query_ci(scope: Scope) -> dict[str, str]:
    """Query parameters with lower-cased keys (first value wins), like ASP.NET Core's IQueryCollection."""
    out: dict[str, str] = {}
    for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
        out.setdefault(key.lower(), value)
    return out


def _text(status: int, text: str) -> Response:
    return PlainTextResponse(text, status_code=status)


class HubEndpoint:
    def __init__(
        self,
        hub_factory: Callable[[], Hub],
        options: HubOptions | None = None,
        *,
        authenticate: Authenticate | None = None,
        on_negotiate: Callable[[Request, Response], None] | None = None,
        data_handler: DataHandler | None = None,
    ) -> None:
        self.options = options or HubOptions()
        self.manager = ConnectionManager(hub_factory, self.options)
        self.authenticate = authenticate
        self.on_negotiate = on_negotiate
        self.data_handler: DataHandler = data_handler or hub_receive

    async def _user(self, conn: HTTPConnection) -> Any:
        return None if self.authenticate is None else await self.authenticate(conn)

    # --- negotiate --------------------------------------------------------------------------------
    async def negotiate(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self._negotiate(request)
        if self.on_negotiate is not None:
            self.on_negotiate(request, response)
        await response(scope, receive, send)

    async def _negotiate(self, request: Request) -> Response:
        if request.method != "POST":
            return _text(405, "Method Not Allowed")
        try:
            user = await self._user(request)
        except Unauthorized as exc:
            return _text(exc.status, exc.text) if exc.text else Response(status_code=exc.status)
        query = query_ci(request.scope)
        try:
            version = select_version(query.get("negotiateversion"))
        except NegotiateVersionError as exc:
            return Response(negotiate_error(str(exc)), media_type="application/json")
        if self.manager.draining:
            return Response(negotiate_error("The server is shutting down."), media_type="application/json")
        if self.manager.full():
            return Response(negotiate_error("The server has reached its connection limit."), media_type="application/json")
        stateful = self.options.allow_stateful_reconnect and query.get("usestatefulreconnect", "").lower() == "true"
        connection = self.manager.create(stateful=stateful, user=user, version=version)
        connection.query = query
        body = NegotiateResponse(
            connection.connection_id, connection.token, version, transports=self.options.transports,
            use_stateful_reconnect=stateful,
        ).to_json()
        return Response(body, media_type="application/json")

    # --- the connection route ---------------------------------------------------------------------
    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        ws = WebSocket(scope, receive, send)
        query = query_ci(scope)
        token = query.get("id")
        if Transport.WEB_SOCKETS not in self.options.transports:
            await self._deny(ws, 404, "WebSockets transport not supported by this end point type")
            return
        if token is None:
            try:
                user = await self._user(ws)
            except Unauthorized as exc:
                await self._deny(ws, exc.status, exc.text)
                return
            if self.manager.full() or self.manager.draining:
                await self._deny(ws, 503, "The server is not accepting connections.")
                return
            connection = self.manager.create(stateful=False, user=user, version=0)
            connection.query = query
            await run_websocket(ws, connection, resume=False)
            return
        found = self.manager.by_token(token)
        if found is None or found.state is State.CLOSED:
            await self._deny(ws, 404, "No Connection with that ID")
            return
        if found.transport is None:
            if not found.query:
                found.query = query
            await run_websocket(ws, found, resume=False)
        elif found.transport is not Transport.WEB_SOCKETS:
            await self._deny(ws, 400, "Cannot change transports mid-connection")
        elif found.replay is not None and (found.inactive_since is not None or await take_over(found)):
            await run_websocket(ws, found, resume=True)
        else:
            await self._deny(ws, 409, "Connection already has an active WebSocket.")

    async def _deny(self, ws: WebSocket, status: int, text: str) -> None:
        if "websocket.http.response" in ws.scope.get("extensions", {}):
            await ws.send_denial_response(PlainTextResponse(text, status_code=status) if text else Response(status_code=status))
        else:
            await ws.close(1008)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._http(scope, receive, send)
        if response is not None:
            await response(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> Response | None:
        method = scope["method"]
        if method not in ("GET", "POST", "DELETE"):
            return _text(405, "Method Not Allowed")
        query = query_ci(scope)
        token = query.get("id")
        if not token:
            return _text(400, "Connection ID required")
        connection = self.manager.by_token(token)
        if connection is None or connection.state is State.CLOSED:
            return _text(404, "No Connection with that ID")
        if method == "POST":
            return await self._post(scope, receive, connection)
        if method == "DELETE":
            if connection.transport is not Transport.LONG_POLLING:
                return _text(400, "Cannot terminate this connection using the DELETE endpoint.")
            self.manager.dispose(connection, None)
            return Response(status_code=202, headers=NO_CACHE)
        accept = HTTPConnection(scope).headers.get("accept", "")
        wanted = Transport.SERVER_SENT_EVENTS if "text/event-stream" in accept else Transport.LONG_POLLING
        if wanted not in self.options.transports:
            return _text(404, f"{wanted.value} transport not supported by this end point type")
        if connection.transport is not None and connection.transport is not wanted:
            return _text(400, "Cannot change transports mid-connection")
        if not connection.query:
            connection.query = query
        if wanted is Transport.SERVER_SENT_EVENTS:
            if connection.transport is not None:
                return _text(409, "Connection already has an active Server-Sent Events stream.")
            if EARLY_BODY in connection.items:  # runs once run_sse has attached the parser (before its first await)
                connection.items["_early_task"] = asyncio.get_running_loop().create_task(self._deliver_early(connection))
            await run_sse(scope, receive, send, connection)
            return None
        first = connection.transport is None
        await poll(scope, receive, send, connection)
        if first and EARLY_BODY in connection.items:
            await self._deliver_early(connection)
        return None

    def _post_lock(self, connection: HubConnectionContext) -> asyncio.Lock:
        lock: asyncio.Lock | None = connection.items.get("_post_lock")
        if lock is None:
            lock = connection.items["_post_lock"] = asyncio.Lock()
        return lock

    async def _deliver_early(self, connection: HubConnectionContext) -> None:
        async with self._post_lock(connection):
            early: bytearray | None = connection.items.pop(EARLY_BODY, None)
            if early:
                await self.data_handler(connection, bytes(early))

    async def _post(self, scope: Scope, receive: Receive, connection: HubConnectionContext) -> Response:
        if connection.transport is Transport.WEB_SOCKETS:
            return _text(405, "POST requests are not allowed for WebSocket connections.")
        request = Request(scope, receive)
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_POST_BYTES:
                    return _text(413, f"Request body larger than {MAX_POST_BYTES} bytes.")
        except Exception:
            return _text(400, "Reading the request body failed.")
        async with self._post_lock(connection):  # concurrent POSTs are processed one after the other, like .NET
            if connection.transport is None:
                early: bytearray = connection.items.setdefault(EARLY_BODY, bytearray())
                if len(early) + len(body) > MAX_POST_BYTES:
                    return _text(413, f"Request body larger than {MAX_POST_BYTES} bytes.")
                early += body
                return Response(status_code=200)
            early_body: bytearray | None = connection.items.pop(EARLY_BODY, None)
            if early_body:
                await self.data_handler(connection, bytes(early_body))
            await self.data_handler(connection, bytes(body))
        return Response(status_code=200)


class HubRoute(BaseRoute):
    """Matches `{path}` and `{path}/negotiate` case-insensitively, for HTTP and WebSocket scopes."""

    def __init__(self, path: str, endpoint: HubEndpoint) -> None:
        self.path = path.rstrip("/")
        self._lower = self.path.lower()
        self.endpoint = endpoint

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        path = scope["path"].rstrip("/").lower()
        if path == self._lower or path == self._lower + "/negotiate":
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].rstrip("/").lower()
        if path.endswith("/negotiate") and path != self._lower:
            if scope["type"] == "websocket":
                await WebSocket(scope, receive, send).close(1008)
                return
            await self.endpoint.negotiate(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.endpoint.websocket(scope, receive, send)
        else:
            await self.endpoint.http(scope, receive, send)


def hub_route(path: str, hub_factory: Callable[[], Hub], options: HubOptions | None = None, **kwargs: Any) -> HubRoute:
    return HubRoute(path, HubEndpoint(hub_factory, options, **kwargs))


class HubStarlette(Starlette):
    """Starlette, with WebSocket connections to a hub handed straight to its endpoint: the middleware stack does
    nothing for them (CORS and error pages are HTTP matters), but its coroutine frames would live as long as every
    socket (~2.5 KB per idle connection). HTTP requests and other WebSockets take the usual path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hub_sockets = {route.path.lower(): route.endpoint for route in self.routes if isinstance(route, HubRoute)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            endpoint = self.hub_sockets.get(scope["path"].rstrip("/").lower())
            if endpoint is not None:
                scope["app"] = self
                await endpoint.websocket(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
