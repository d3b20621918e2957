"""Synchronous WebSocket writes: fan-out without a task wake-up, an ASGI round trip or an await per recipient.

`OutboundQueue.put` normally wakes the connection's writer task, which awaits the ASGI `send`. With a
`DirectWriter` attached, `put` only marks the connection; once per event-loop iteration a `Flusher` takes every
marked connection's queued frames (several at once become one WebSocket message, as in the writer task) and
writes them to the socket itself: the frame header is built here (server frames are unmasked) and header and
payload go to the transport without copying the payload. One broker message fanned out to N sockets thus costs
N transport writes and nothing else, like `websockets.broadcast`.

The writer task stays the slow path and keeps every rule of the queue: while the transport is over its
high-water mark (uvicorn's `writable` cleared), while the task is inside an awaited send, or when the connection is
closing, the flusher wakes the task instead of writing, so frames keep their order and a slow client's frames wait
in its bounded queue (audio dropped oldest-first, as before). Only uvicorn's websockets-sansio protocol with no
extension negotiated (no permessage-deflate) is written to directly; anything else uses the writer task alone.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from typing import TYPE_CHECKING, Any

from hub.signalr.context import State
from hub.signalr.outbound import join_payloads

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

    from hub.signalr.context import HubConnectionContext
    from hub.signalr.outbound import Payload

log = logging.getLogger("hub.signalr")

_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")
_CLOSED = State.CLOSED
TEXT = 0x81  # FIN + text
BINARY = 0x82  # FIN + binary


def frame_header(opcode: int, length: int) -> bytes:
    """RFC 6455 header of an unmasked, unfragmented server frame."""
    if length < 126:
        return _SHORT.pack(opcode, length)
    if length < 1 << 16:
        return _MEDIUM.pack(opcode, 126, length)
    return _LONG.pack(opcode, 127, length)


def _sansio_protocol(send: Any) -> Any:
    """uvicorn's WebSocketsSansIOProtocol behind an ASGI `send` (a bound method, possibly wrapped in closures by
    middleware), or None."""
    try:
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
    except ImportError:  # pragma: no cover - another ASGI server
        return None
    seen: set[int] = set()
    todo: list[Any] = [send]
    while todo and len(seen) < 16:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        owner = getattr(item, "__self__", None)
        if isinstance(owner, WebSocketsSansIOProtocol):
            return owner
        for cell in getattr(item, "__closure__", None) or ():
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if callable(value):
                todo.append(value)
    return None


def release_handshake(ws: WebSocket) -> None:
    """Once accepted, uvicorn no longer needs the handshake request and response it keeps (~5 KB per idle
    connection, headers included; the ASGI scope keeps its own copy of the request headers)."""
    protocol = _sansio_protocol(getattr(ws, "_send", None))
    if protocol is not None and protocol.handshake_complete and hasattr(protocol, "request"):
        protocol.request = None
        protocol.response = None


class Flusher:
    """Once per loop iteration: write every marked connection's queue (one per running loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: list[DirectWriter] = []
        self.scheduled = False
        self.writes = 0  # transport writes made here (each one WebSocket message, one or more hub messages)
        self._now: float | None = None

    def mark(self, writer: DirectWriter) -> None:
        if writer.marked:
            return
        writer.marked = True
        self.pending.append(writer)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.run)

    def now(self) -> float:
        if self._now is None:
            self._now = time.monotonic()
        return self._now

    def run(self) -> None:
        pending, self.pending = self.pending, []
        self.scheduled = False
        self._now = None
        for writer in pending:
            writer.marked = False
            try:
                writer.flush()
            except Exception:
                log.exception("connection %s: direct write failed, using the writer task", writer.connection.connection_id)
                writer.detach()


_flusher: Flusher | None = None


def flusher() -> Flusher:
    global _flusher
    loop = asyncio.get_running_loop()
    if _flusher is None or _flusher.loop is not loop:
        _flusher = Flusher(loop)
    return _flusher


class DirectWriter:
    def __init__(self, protocol: Any, connection: HubConnectionContext) -> None:
        self.protocol = protocol
        self.transport = protocol.transport
        self.connection = connection
        self.flusher = flusher()
        self.marked = False
        self.busy = False  # the writer task is inside an awaited send: it writes, in order
        self.attached = True
        connection.queue.notify = self._notify
        if connection.replay is None:
            connection.queue.fast = []
            connection.queue.fast_open = self._writable()

    @classmethod
    def attach(cls, ws: WebSocket, connection: HubConnectionContext) -> DirectWriter | None:
        protocol = _sansio_protocol(getattr(ws, "_send", None))
        if protocol is None or getattr(protocol.conn, "extensions", None):
            return None
        return cls(protocol, connection)

    def detach(self) -> None:
        """Back to the writer task alone (the socket ended, or a direct write failed)."""
        if self.attached:
            self.attached = False
            queue = self.connection.queue
            if queue.notify == self._notify:
                queue.notify = None
                queue.disable_fast()
            queue.wake()

    def begin_send(self) -> None:
        """The writer task is about to await a send: frames queue behind it, in order."""
        self.busy = True
        self.connection.queue.fast_open = False

    def end_send(self) -> None:
        self.busy = False
        if self.attached and self.connection.queue.fast is not None:
            self.connection.queue.fast_open = self._writable()

    def _notify(self) -> None:
        self.flusher.mark(self)

    def _writable(self) -> bool:
        protocol = self.protocol
        conn = protocol.conn  # open: neither side has sent a close frame (cheaper than its `state` property)
        return (protocol.writable.is_set() and not protocol.close_sent and not self.transport.is_closing()
                and conn.close_sent is None and conn.close_rcvd is None)

    def flush(self) -> None:
        connection = self.connection
        if not self.attached or connection.state is _CLOSED:
            return
        queue = connection.queue
        if self.busy or not self._writable():
            queue.fast_open = False
            queue.wake()
            return
        fast = queue.fast
        if fast:
            queue.fast = []
            self.transport.writelines(_framed(fast[0] if len(fast) == 1 else join_payloads(fast)))
            flusher = self.flusher
            flusher.writes += 1
            connection.last_sent = flusher.now()
            connection.manager.metrics_frames_out += len(fast)
        if queue._entries or connection._resume is not None:  # frames that took the queue (see the writer task)
            self._flush_queue()
        elif fast is not None:
            queue.fast_open = self.protocol.writable.is_set()
        if connection.closing:
            queue.wake()  # the writer task sees the queue empty and ends the transport

    def _flush_queue(self) -> None:
        connection = self.connection
        queue = connection.queue
        writable = self.protocol.writable
        while len(queue) and writable.is_set():
            payload = connection.take_write()
            if payload is None:
                break
            self.transport.writelines(_framed(payload))
            self.flusher.writes += 1
        if queue.fast is not None:
            queue.fast_open = writable.is_set()
        if len(queue):
            queue.wake()  # over the high-water mark: the writer task waits for the drain


_last_text: tuple[str, bytes] = ("", b"")


def _framed(payload: Payload) -> tuple[bytes, bytes]:
    global _last_text
    if isinstance(payload, str):
        # Text frames need UTF-8 bytes: a fan-out writes the same str to connection after connection, so the
        # last encoding is kept (by identity) and most recipients reuse it.
        text, data = _last_text
        if text is not payload:
            data = payload.encode()
            _last_text = (payload, data)
        return frame_header(TEXT, len(data)), data
    return frame_header(BINARY, len(payload)), payload
