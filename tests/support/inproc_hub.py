"""A TestHub endpoint (hub.conformance) under a real in-process uvicorn on a free loopback port, for transport tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette

from hub.conformance import TestHub
from hub.signalr.endpoint import HubEndpoint, HubRoute, HubStarlette
from hub.signalr.options import HubOptions
from hub.signalr.outbound import OutgoingMessage
from hub.signalr.transports.uvicorn_ws import LeanWebSocketProtocol
from protocol import InvocationMessage
from tests.support.ports import free_port
from tests.support.timing import eventually, scaled, wait_for

PATH = "/h"


@contextlib.asynccontextmanager
async def running_hub(options: HubOptions | None = None, *, deflate: bool = False, lean: bool = False,
                      ws_max_size: int = 16 * 1024 * 1024) -> AsyncIterator[tuple[int, HubEndpoint, uvicorn.Server]]:
    """Yields (port, endpoint, server); the hub is at http://127.0.0.1:{port}/h. `lean`: served as `python -m hub
    serve` serves it (HubStarlette, LeanWebSocketProtocol); otherwise plain Starlette and uvicorn's defaults."""
    endpoint = HubEndpoint(TestHub, options or HubOptions())
    routes = [HubRoute(PATH, endpoint)]
    app = HubStarlette(routes=routes) if lean else Starlette(routes=routes)
    port = free_port()
    extra: dict[str, Any] = {"ws": LeanWebSocketProtocol} if lean else {}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           ws_per_message_deflate=deflate, ws_max_size=ws_max_size, **extra))
    task = asyncio.get_running_loop().create_task(server.serve())
    await eventually(lambda: server.started, 10, "uvicorn to start")
    try:
        yield port, endpoint, server
    finally:
        server.should_exit = True
        await wait_for(task, scaled(15))


def broadcast(endpoint: HubEndpoint, target: str, value: Any, drop_key: Any = None) -> None:
    """One pre-encoded invocation to every open connection, as the hub's fan-out sends it."""
    message = OutgoingMessage(InvocationMessage(target, [value]))
    for connection in endpoint.manager.all_open():
        connection.send_encoded(message, drop_key=drop_key)
