"""Routes of one hub: `POST {hub}/negotiate` and the WebSockets transport at `{hub}`.

Not yet here: Server-Sent Events, long polling, connection tokens that outlive negotiate, reaping.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from hub.signalr.hub import Hub
from hub.signalr.ids import new_id
from hub.signalr.websocket_transport import serve_websocket
from protocol.negotiate import NegotiateResponse, NegotiateVersionError, Transport, negotiate_error, select_version

NEGOTIATED_LIFETIME = 15.0
"""`DisconnectTimeout`: a negotiated connection that never connects is forgotten after this long."""
MAX_PENDING = 10_000


def hub_routes(path: str, hub_factory: Callable[[], Hub], *, detailed_errors: bool = False) -> list[BaseRoute]:
    pending: dict[str, tuple[str, float]] = {}  # connection token -> (connection id, deadline)

    def remember(token: str, connection_id: str) -> None:
        now = time.monotonic()
        for stale in [t for t, (_, deadline) in pending.items() if deadline < now][:100]:
            del pending[stale]
        if len(pending) >= MAX_PENDING:
            del pending[next(iter(pending))]
        pending[token] = (connection_id, now + NEGOTIATED_LIFETIME)

    async def negotiate(request: Request) -> Response:
        if request.method != "POST":
            return PlainTextResponse("Method Not Allowed", status_code=405)
        try:
            version = select_version(request.query_params.get("negotiateVersion"))
        except NegotiateVersionError as exc:
            return Response(negotiate_error(str(exc)), media_type="application/json")
        connection_id, token = new_id(), new_id()
        # negotiate v0 has no token: the client sends the connection id itself in ?id=.
        remember(token if version > 0 else connection_id, connection_id)
        body = NegotiateResponse(connection_id, token, version, transports=(Transport.WEB_SOCKETS,)).to_json()
        return Response(body, media_type="application/json")

    async def websocket(ws: WebSocket) -> None:
        hub = hub_factory()
        token = ws.query_params.get("id")
        entry = pending.pop(token, None) if token else None
        hub.connection_id = entry[0] if entry else new_id()
        await serve_websocket(ws, hub, detailed_errors)

    return [
        Route(path + "/negotiate", negotiate, methods=["GET", "POST", "PUT", "DELETE"]),
        WebSocketRoute(path, websocket),
    ]
