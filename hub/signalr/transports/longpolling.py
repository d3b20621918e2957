"""Long polling: GET polls (the first returns at once), POST sends, DELETE ends.

Between polls the connection is inactive and is reaped after `disconnect_timeout`. A new poll while one
waits ends the old one with 204; a poll on an ended connection gets 204.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from hub.signalr.context import HubConnectionContext, State
from hub.signalr.inbound import attach_parser
from hub.signalr.outbound import as_bytes
from protocol.negotiate import Transport

NO_CACHE = {"Cache-Control": "no-cache, no-store", "Pragma": "no-cache", "Expires": "Thu, 01 Jan 1970 00:00:00 GMT"}


def _ok(body: bytes = b"") -> Response:
    return Response(body, status_code=200, media_type="application/octet-stream", headers=NO_CACHE)


def _ended() -> Response:
    return Response(status_code=204, headers=NO_CACHE)


async def poll(scope: Scope, receive: Receive, send: Send, connection: HubConnectionContext) -> None:
    response = await _poll(scope, receive, connection)
    await response(scope, receive, send)


async def _poll(scope: Scope, receive: Receive, connection: HubConnectionContext) -> Response:
    if connection.transport is None:
        connection.transport = Transport.LONG_POLLING
        connection.request = HTTPConnection(scope)
        connection.state = State.CONNECTED
        connection.created_at = time.monotonic()
        connection.inactive_since = time.monotonic()
        attach_parser(connection, Transport.LONG_POLLING)
        return _ok()
    if connection.state is State.CLOSED:
        return _ended()
    previous: asyncio.Event | None = connection.items.get("_poll")
    if previous is not None:
        previous.set()  # the older poll answers 204
    mine = asyncio.Event()
    connection.items["_poll"] = mine
    connection.inactive_since = None
    loop = asyncio.get_running_loop()
    write = loop.create_task(connection.next_write())
    waits = {
        write,
        loop.create_task(mine.wait()),
        loop.create_task(connection.transport_gone.wait()),
        loop.create_task(_client_left(receive)),
    }
    try:
        done, _ = await asyncio.wait(waits, timeout=connection.options.poll_timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            if task is not write or not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if connection.items.get("_poll") is mine:
            del connection.items["_poll"]
            connection.inactive_since = time.monotonic()
    if write in done and not write.cancelled():
        payload = write.result()
        if payload is None:
            connection.manager.dispose(connection, None)
            return _ended()
        return _ok(as_bytes(payload))
    if not done:
        return _ok()  # poll timeout: the client polls again
    return _ended()


async def _client_left(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
