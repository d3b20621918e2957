"""WebSockets: one server write = one WebSocket message holding one or more whole records.

A stateful-reconnect connection whose socket drops without a close handshake (1005/1006) stays alive for
`disconnect_timeout`; a new socket with the same `?id=` resumes it (Sequence + replay, no handshake).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from hub.signalr.context import HubConnectionContext, State
from hub.signalr.inbound import attach_parser, receive
from hub.signalr.transports.direct import DirectWriter, release_handshake
from protocol.negotiate import Transport

log = logging.getLogger("hub.signalr")

ABNORMAL_CLOSURE = 1006
NO_STATUS = 1005


async def _write_loop(ws: WebSocket, connection: HubConnectionContext, direct: DirectWriter | None) -> None:
    """The slow path when a DirectWriter is attached (it wakes this task when it may not write), else every write."""
    while True:
        payload = await connection.next_write()
        if payload is None:
            return
        if direct is not None:
            direct.begin_send()
        try:
            if isinstance(payload, str):
                await ws.send_text(payload)
            else:
                await ws.send_bytes(payload)
        finally:
            if direct is not None:
                direct.end_send()


async def take_over(connection: HubConnectionContext, seconds: float = 5.0) -> bool:
    """A stateful client reconnected before we noticed its old socket died: retire the old one first."""
    pair: tuple[Callable[[str], None], asyncio.Future[None]] | None = connection.items.get("_ws_takeover")
    if pair is None:
        return False
    finish, detached = pair
    finish("takeover")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(detached), seconds)
    return connection.inactive_since is not None and connection.state is State.OPEN


async def run_websocket(ws: WebSocket, connection: HubConnectionContext, *, resume: bool) -> None:
    await ws.accept()
    release_handshake(ws)
    if resume:
        connection.inactive_since = None
        connection.resume()
    else:
        connection.transport = Transport.WEB_SOCKETS
        connection.request = ws
        connection.inactive_since = None
        connection.state = State.CONNECTED
        connection.created_at = time.monotonic()
        attach_parser(connection, Transport.WEB_SOCKETS)
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[str] = loop.create_future()  # one future, not a task per thing to wait for (memory)
    detached: asyncio.Future[None] = loop.create_future()

    def finish(why: str) -> None:
        if not stop.done():
            stop.set_result(why)

    connection.items["_ws_takeover"] = (finish, detached)
    direct = DirectWriter.attach(ws, connection)
    writer = loop.create_task(_write_loop(ws, connection, direct))
    reader = loop.create_task(_read_loop(ws, connection))
    gone = loop.create_task(connection.transport_gone.wait())
    for task in (writer, reader, gone):
        task.add_done_callback(lambda _task: finish("task"))
    await stop
    done = {task for task in (writer, reader, gone) if task.done()}
    # Graceful: the server finished (Close flushed, or disposed), or the client sent a close frame.
    # Anything else (a send failed, the TCP connection died: 1006) is a drop a stateful client may repair.
    graceful = gone in done or (writer in done and not writer.cancelled() and writer.exception() is None)
    if reader in done and not reader.cancelled() and reader.exception() is None:
        # 1005 (no status) is what uvicorn reports for a dropped TCP connection, and what the TS client
        # sends on stop() right after its hub Close message (which already ended the connection).
        graceful = graceful or reader.result() not in (NO_STATUS, ABNORMAL_CLOSURE)
    log.debug("connection %s: websocket ended (graceful=%s, reader=%s)", connection.connection_id, graceful,
              reader.result() if reader in done and not reader.cancelled() and reader.exception() is None else "-")
    if direct is not None:
        direct.detach()
    for task in (writer, reader, gone):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if ws.client_state is WebSocketState.CONNECTED and ws.application_state is WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await ws.close(1000)
    if not graceful and connection.replay is not None and connection.state is State.OPEN and not connection.closing:
        log.info("connection %s: socket dropped, waiting %.0f s for a stateful reconnect",
                 connection.connection_id, connection.options.disconnect_timeout)
        connection.inactive_since = time.monotonic()
        _set(detached)
        return
    _set(detached)
    connection.manager.dispose(connection, None)


async def _read_loop(ws: WebSocket, connection: HubConnectionContext) -> int | None:
    """Read until the client leaves (returns its close code) or the connection ends (returns None)."""
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                code: int | None = message.get("code")
                return code
            data = message.get("bytes")
            if data is None:
                data = (message.get("text") or "").encode("utf-8")
            if not await receive(connection, data):
                # Ending: let the writer flush the Close (or handshake error) and stop.
                await connection.transport_gone.wait()
                return None
    except WebSocketDisconnect as exc:
        return exc.code


def _set(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
