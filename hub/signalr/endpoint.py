"""Routes of one hub: `POST {hub}/negotiate` and the WebSockets transport at `{hub}`.

Not yet here: Server-Sent Events, long polling, connection tokens that outlive negotiate, reaping.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from hub.signalr.hub import Hub
from hub.signalr.ids import new_id
from hub.signalr.websocket_transport import serve_websocket
from protocol.negotiate import NegotiateResponse, NegotiateVersionError, Transport, negotiate_error, select_version


def hub_routes(path: str, hub_factory: Callable[[], Hub], *, detailed_errors: bool = False) -> list[BaseRoute]:
    async def negotiate(request: Request) -> Response:
        if request.method != "POST":
            return PlainTextResponse("Method Not Allowed", status_code=405)
        try:
            version = select_version(request.query_params.get("negotiateVersion"))
        except NegotiateVersionError as exc:
            return Response(negotiate_error(str(exc)), media_type="application/json")
        body = NegotiateResponse(new_id(), new_id(), version, transports=(Transport.WEB_SOCKETS,)).to_json()
        return Response(body, media_type="application/json")

    async def websocket(ws: WebSocket) -> None:
        await serve_websocket(ws, hub_factory(), detailed_errors)

    return [
        Route(path + "/negotiate", negotiate, methods=["GET", "POST", "PUT", "DELETE"]),
        WebSocketRoute(path, websocket),
    ]
