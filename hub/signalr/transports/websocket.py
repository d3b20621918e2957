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


async def _write_loop(ws: WebSocket, connection: HubConnectionContext, direct: DirectWriter | None,
                      idle_exit: bool) -> bool:
    """Write queued frames. True once the connection's writes are over (the socket should end); False when the
    queue is empty and `idle_exit` (the task is started again by the next wake-up)."""
    while True:
        if idle_exit:
            payload = connection.take_write()
            if payload is None:
                return connection.writes_finished
        else:
            payload = await connection.next_write()
            if payload is None:
                return True
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


class _Socket:
    """One WebSocket's life: the reading runs in the ASGI task itself; the writer task exists only while it has
    work when a DirectWriter does the ordinary writes (a parked task per idle connection costs ~1.5 KB); the end
    of the connection is a callback, not a task waiting on an event."""

    def __init__(self, ws: WebSocket, connection: HubConnectionContext, direct: DirectWriter | None) -> None:
        self.ws = ws
        self.connection = connection
        self.direct = direct
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.reason: str | None = None  # why the socket ends: "gone", "writer", "reader", "takeover", "failed"
        self.stopped: asyncio.Future[None] | None = None  # the reader, waiting for the end after a client Close
        self.reading = False  # the ASGI task is parked in `ws.receive()`: `finish` interrupts it there
        self.interrupted = False
        self.writer: asyncio.Task[bool] | None = None
        self.writer_failed = False
        self.client_code: int | None = None  # the client's close code, when the client ended the socket

    # --- the end ----------------------------------------------------------------------------------
    def finish(self, why: str) -> None:
        if self.reason is not None:
            return
        self.reason = why
        if self.stopped is not None and not self.stopped.done():
            self.stopped.set_result(None)
        if self.reading and self.task is not None and not self.interrupted:
            self.interrupted = True
            self.task.cancel()

    @property
    def graceful(self) -> bool:
        """The server finished (Close flushed, or disposed), or the client closed properly. Anything else (a send
        failed, the TCP connection died: 1005/1006) is a drop a stateful client may repair."""
        if self.reason in ("gone", "writer"):
            return not self.writer_failed
        if self.reason == "reader":
            return self.client_code not in (NO_STATUS, ABNORMAL_CLOSURE)
        return False

    # --- writing ------------------------------------------------------------------------------------
    def wake_writer(self) -> None:
        if self.writer is None and self.reason is None:
            self.writer = self.loop.create_task(self._write())

    async def _write(self) -> bool:
        direct = self.direct
        lazy = direct is not None and direct.attached
        try:
            done = await _write_loop(self.ws, self.connection, direct, lazy)
        except Exception:
            self.writer_failed = True
            self.finish("writer")
            return True
        finally:
            self.writer = None
        if done:
            self.finish("writer")
        return done

    async def stop_writer(self) -> None:
        writer = self.writer
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    # --- reading ------------------------------------------------------------------------------------
    async def read(self) -> None:
        """Read until the client leaves or `finish` is called."""
        ws, connection, task = self.ws, self.connection, self.task
        try:
            while self.reason is None:
                self.reading = True
                try:
                    message = await ws.receive()
                except asyncio.CancelledError:
                    if self.interrupted and task is not None and task.uncancel() == 0:
                        return  # `finish` stopped the reading; nothing was taken from the socket
                    raise
                finally:
                    self.reading = False
                if message["type"] == "websocket.disconnect":
                    self.client_code = message.get("code")
                    self.finish("reader")
                    return
                data = message.get("bytes")
                if data is None:
                    data = (message.get("text") or "").encode("utf-8")
                if not await receive(connection, data):
                    # Ending (client Close, or a handshake error): the writer flushes the Close, then the end.
                    if self.reason is None:
                        self.stopped = self.loop.create_future()
                        await self.stopped
                    return
        except WebSocketDisconnect as exc:
            self.client_code = exc.code
            self.finish("reader")
        except Exception:
            log.exception("connection %s: reading the websocket failed", connection.connection_id)
            self.finish("failed")


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
    detached: asyncio.Future[None] = loop.create_future()
    direct = DirectWriter.attach(ws, connection)
    sock = _Socket(ws, connection, direct)
    connection.items["_ws_takeover"] = (sock.finish, detached)
    stop_watching = connection.transport_gone.on_set(lambda: sock.finish("gone"))
    if direct is None:
        sock.writer = loop.create_task(sock._write())  # every write goes through the task: it stays
    else:
        connection.queue.on_wake = sock.wake_writer
        sock.wake_writer()  # for whatever waited before the socket (a resume's replay, an early Close)
    try:
        await sock.read()
    finally:
        stop_watching()
        connection.queue.on_wake = None
        if direct is not None:
            direct.detach()
        await sock.stop_writer()
    graceful = sock.graceful
    log.debug("connection %s: websocket ended (%s, graceful=%s, client code=%s)", connection.connection_id,
              sock.reason, graceful, sock.client_code)
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


def _set(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
