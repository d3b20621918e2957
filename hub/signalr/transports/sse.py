"""Server-Sent Events: the receive leg (GET, text/event-stream); the client sends with POST.

Opens with the `:\\r\\n` preamble; each write is one event whose payload lines are sent as `data:` lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from starlette.types import Receive, Scope, Send

from hub.signalr.context import HubConnectionContext, State
from hub.signalr.inbound import attach_parser
from protocol.negotiate import Transport

HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache,no-store"),
    (b"pragma", b"no-cache"),
    (b"content-encoding", b"identity"),
    (b"x-accel-buffering", b"no"),
]


def format_event(payload: str) -> bytes:
    lines = payload.split("\n")
    return "".join(f"data: {line.removesuffix(chr(13))}\r\n" for line in lines).encode("utf-8") + b"\r\n"


async def run_sse(scope: Scope, receive: Receive, send: Send, connection: HubConnectionContext) -> None:
    from starlette.requests import HTTPConnection

    connection.transport = Transport.SERVER_SENT_EVENTS
    connection.request = HTTPConnection(scope)
    connection.inactive_since = None
    connection.state = State.CONNECTED
    connection.created_at = time.monotonic()
    attach_parser(connection, Transport.SERVER_SENT_EVENTS)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b":\r\n", "more_body": True})

    async def write() -> None:
        while True:
            payload = await connection.next_write()
            if payload is None:
                return
            text = payload if isinstance(payload, str) else payload.decode("utf-8")
            await send({"type": "http.response.body", "body": format_event(text), "more_body": True})

    async def client_left() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    loop = asyncio.get_running_loop()
    tasks = {loop.create_task(write()), loop.create_task(client_left()), loop.create_task(connection.transport_gone.wait())}
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    connection.manager.dispose(connection, None)
    with contextlib.suppress(Exception):
        await send({"type": "http.response.body", "body": b"", "more_body": False})
