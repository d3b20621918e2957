"""A lean WebSocket client: an `asyncio.Protocol` that hands each incoming message to a synchronous callback.

`open_websocket(url, on_message)` connects (ws:// or wss://), and `on_message(payload, is_text)` is then called
from `data_received` for every complete message: no reader task, no queue, no task switch per message. Sends
write to the transport at once; `send` waits only while the transport has paused writing (flow control).

websockets' sans-I/O `ClientProtocol` does the HTTP upgrade, control frames (ping -> pong), the close handshake,
failing the connection, and every outgoing frame (masked). Incoming data frames are split and reassembled by
hub.client.ws_frames when no extension was negotiated (the common case: `python -m hub serve` declines
permessage-deflate): the library parses a frame through generators and builds an object per frame, about 3 us
of CPU, where splitting the read by hand costs well under 1 us. Control frames are handed to the library whole,
so its state machine stays the only one. With permessage-deflate negotiated every byte goes through the library.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
from collections.abc import Callable
from typing import Any, cast

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidState
from websockets.extensions.permessage_deflate import enable_client_permessage_deflate
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import USER_AGENT, Response
from websockets.protocol import State
from websockets.uri import parse_uri

from hub.client.ws_frames import FrameSplitter

log = logging.getLogger("hub.client.ws")

MessageCallback = Callable[[bytes, bool], None]  # (payload, is_text); text payloads are valid UTF-8, undecoded
CloseCallback = Callable[[], None]

OPEN_TIMEOUT_SECONDS = 15.0
CLOSE_TIMEOUT_SECONDS = 10.0
MAX_HEADER_BYTES = 64 * 1024  # an HTTP upgrade answer longer than this is refused by the library anyway


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one loads every CA certificate (~20 ms of CPU), which blocked the
    event loop of processes opening hundreds of connections when each client built its own."""
    return ssl.create_default_context()


class WebSocketConnection(asyncio.Protocol):
    """One client WebSocket. Build it with `open_websocket`; `send`, `ping`, `close`, `wait_closed`."""

    def __init__(self, url: str, on_message: MessageCallback, *, max_size: int, compression: bool,
                 on_close: CloseCallback | None = None, headers: dict[str, str] | None = None) -> None:
        self.uri = parse_uri(url)
        self.on_message = on_message
        self.on_close = on_close
        self.max_size = max_size
        self.failure: BaseException | None = None  # what ended the connection on this side, if anything
        extensions = enable_client_permessage_deflate(None) if compression else None
        self._proto = ClientProtocol(self.uri, extensions=extensions, max_size=max_size)
        self._request = self._proto.connect()
        self._request.headers["User-Agent"] = USER_AGENT
        for name, value in (headers or {}).items():
            self._request.headers[name] = value
        self._proto.send_request(self._request)
        loop = asyncio.get_running_loop()
        self._opened: asyncio.Future[None] = loop.create_future()
        self._closed: asyncio.Future[None] = loop.create_future()
        self._transport: asyncio.Transport | None = None
        self._handshake: bytearray | None = bytearray()  # the HTTP answer until its blank line, then None
        self._fast = False  # data frames split by _splitter (no extension negotiated)
        self._splitter = FrameSplitter(max_size, self._deliver, self._control, self._fail)
        self._fragments: list[bytes] = []  # a fragmented message being reassembled (library path)
        self._fragment_text = False
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._pings: dict[bytes, asyncio.Future[None]] = {}
        self._close_timer: asyncio.TimerHandle | None = None
        self._ended = False  # this side closed or failed the connection: no message is delivered any more

    # --- state -------------------------------------------------------------------------------------
    @property
    def open(self) -> bool:
        return self._proto.state is State.OPEN and self._transport is not None

    @property
    def close_code(self) -> int | None:
        """The close code received (1006 when the TCP connection ended without one); None while open."""
        return self._proto.close_code

    @property
    def sent_close_code(self) -> int | None:
        """The close code this side sent (1009 for a message over max_size, 1002 for a protocol error)."""
        return self._proto.close_sent.code if self._proto.close_sent is not None else None

    @property
    def close_reason(self) -> str | None:
        return self._proto.close_reason

    @property
    def extensions(self) -> list[str]:
        return [extension.name for extension in self._proto.extensions]

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    # --- sending -----------------------------------------------------------------------------------
    def send_nowait(self, message: str | bytes) -> None:
        """Write one message now (str: a text frame, bytes: binary). Raises ConnectionClosed once closing."""
        if self._proto.state is not State.OPEN:
            raise self._closed_error()
        if isinstance(message, str):
            self._proto.send_text(message.encode())
        else:
            self._proto.send_binary(message)
        self._flush()

    async def send(self, message: str | bytes) -> None:
        """Write one message; waits while the transport's buffer is over its high-water mark."""
        self.send_nowait(message)
        if self._write_paused:
            await self._drain()

    def ping(self, data: bytes = b"") -> asyncio.Future[None]:
        """Send a ping; the future is done when the matching pong arrives (failed if the connection closes)."""
        if self._proto.state is not State.OPEN:
            raise self._closed_error()
        if data in self._pings:
            raise ValueError("a ping with this payload is already waiting for its pong")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pings[data] = waiter
        self._proto.send_ping(data)
        self._flush()
        return waiter

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "",
                    seconds: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """The close handshake: send Close, wait (bounded) for the server to answer and end the TCP connection."""
        self.close_nowait(code, reason)
        if self._transport is not None and not self._closed.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._closed), seconds)
            except TimeoutError:
                self._transport.abort()
                await asyncio.shield(self._closed)

    def close_nowait(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the close handshake without waiting; the TCP connection ends when the server answers (or after
        CLOSE_TIMEOUT_SECONDS). Nothing more is delivered to the message callback."""
        self._ended = True
        if self._proto.state is State.OPEN and self._transport is not None:
            self._proto.send_close(code, reason)
            self._flush()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def pause_reading(self) -> None:
        if self._transport is not None and not self._closed.done():
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self._closed.done():
            self._transport.resume_reading()

    def _closed_error(self) -> ConnectionClosed:
        if self._proto.state is State.CLOSED:
            return self._proto.close_exc
        return ConnectionClosed(self._proto.close_rcvd, self._proto.close_sent, self._proto.close_rcvd_then_sent)

    async def _drain(self) -> None:
        if self._closed.done():
            raise self._closed_error()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drain_waiters.append(waiter)
        await waiter

    def _flush(self) -> None:
        transport = self._transport
        for data in self._proto.data_to_send():
            if transport is None or transport.is_closing():
                continue
            if not data:  # SEND_EOF
                if transport.can_write_eof():
                    transport.write_eof()
                else:
                    transport.close()
            else:
                transport.write(data)
        if self._close_timer is None and transport is not None and self._proto.close_expected():
            self._close_timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_SECONDS, transport.abort)

    # --- asyncio.Protocol --------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._flush()  # the upgrade request

    def data_received(self, data: bytes) -> None:
        try:
            if self._fast:
                if self._proto.state is State.OPEN:
                    rest = self._splitter.feed(data)
                    if rest:  # closing: the library reads on from this frame boundary (for the close answer)
                        self._receive_library(rest)
                    return
                pending = self._splitter.take_pending()  # a frame begun while open: from its first byte
                self._receive_library(pending + data if pending else data)
            elif self._handshake is not None:
                self._receive_handshake(data)
            else:
                self._receive_library(data)
        except Exception as exc:  # the message callback raised: fail the connection, keep the cause
            self.failure = self.failure or exc
            self._ended = True
            log.warning("websocket message handler failed: %r", exc)
            if self._proto.state is State.OPEN:
                self._proto.fail(CloseCode.INTERNAL_ERROR, "client error")
            self._flush()

    def eof_received(self) -> bool | None:
        self._proto.receive_eof()
        self._flush()
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._proto.receive_eof()  # idempotent; moves the state to CLOSED
        self._proto.data_to_send()
        if self._close_timer is not None:
            self._close_timer.cancel()
        if not self._opened.done():
            self._opened.set_exception(ConnectionError(f"connection lost during the WebSocket upgrade: {exc}"))
            self._opened.exception()
        error = self._closed_error()
        for waiter in [*self._drain_waiters, *self._pings.values()]:
            if not waiter.done():
                waiter.set_exception(error)
                waiter.exception()  # nobody has to look at it
        self._drain_waiters.clear()
        self._pings.clear()
        if not self._closed.done():
            self._closed.set_result(None)
        if self.on_close is not None:
            self.on_close()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # --- receiving ---------------------------------------------------------------------------------
    def _receive_handshake(self, data: bytes) -> None:
        """Feed the library the HTTP answer only up to its blank line, so what follows (frames already sent by the
        server) can be split here and the library's own frame parser is left clean, at a frame boundary."""
        assert self._handshake is not None
        self._handshake += data
        end = self._handshake.find(b"\r\n\r\n")
        if end < 0:
            if len(self._handshake) > MAX_HEADER_BYTES:  # the library reads it all (and refuses it)
                head, self._handshake = bytes(self._handshake), None
                self._receive_library(head)
            return
        head, rest = bytes(self._handshake[: end + 4]), bytes(self._handshake[end + 4:])
        self._handshake = None  # from here on every byte goes to a frame parser (or the refusal's body)
        self._receive_library(head)
        if rest:
            self.data_received(rest)

    def _receive_library(self, data: bytes) -> None:
        self._proto.receive_data(data)
        for event in self._proto.events_received():
            if isinstance(event, Response):
                self._handshake_done(event)
            elif isinstance(event, Frame):
                self._frame(event)
        self._flush()

    def _handshake_done(self, response: Response) -> None:
        if self._opened.done():
            return
        if self._proto.handshake_exc is not None:
            self._opened.set_exception(self._proto.handshake_exc)
            self._opened.exception()  # raised by open_websocket; not logged if that wait already timed out
            return
        self._fast = not self._proto.extensions
        self._opened.set_result(None)

    def _frame(self, frame: Frame) -> None:
        """A frame the library parsed: data frames (deflate mode) are reassembled; pongs end ping waits."""
        opcode = frame.opcode
        if opcode is Opcode.PONG:
            waiter = self._pings.pop(bytes(frame.data), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif self._ended:  # (not the state: a close frame parsed in the same read as these frames is no reason)
            return
        elif opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            self._fragment_text = opcode is Opcode.TEXT
            if frame.fin:
                self._deliver(bytes(frame.data), self._fragment_text)
            else:
                self._fragments = [bytes(frame.data)]
        elif opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                payload = b"".join(self._fragments)
                self._fragments = []
                self._deliver(payload, self._fragment_text)

    def _deliver(self, payload: bytes, text: bool) -> bool:
        """One whole message to the callback; False once the connection is closing (stop parsing)."""
        if text:
            try:
                payload.decode()
            except UnicodeDecodeError as exc:
                self._fail(CloseCode.INVALID_DATA, f"invalid UTF-8 at position {exc.start}")
                return False
        self.on_message(payload, text)
        return self._proto.state is State.OPEN

    def _control(self, frame: bytes) -> bool:
        """A whole control frame from the fast path: the library answers pings and runs the close handshake."""
        self._receive_library(frame)
        return self._proto.state is State.OPEN

    def _fail(self, code: int, reason: str) -> None:
        log.info("failing the websocket connection: %d %s", code, reason)
        self._ended = True
        if self._proto.state is State.OPEN:
            self._proto.fail(code, reason)
        self._splitter.reset()
        self._fragments = []
        self._flush()


async def open_websocket(url: str, on_message: MessageCallback, *, on_close: CloseCallback | None = None,
                         max_size: int = 1 << 20, open_timeout: float = OPEN_TIMEOUT_SECONDS,
                         compression: bool = True, headers: dict[str, str] | None = None,
                         ssl_context: ssl.SSLContext | None = None) -> WebSocketConnection:
    """Connect to `url` (ws:// or wss://) and complete the upgrade within `open_timeout` seconds.

    `on_message(payload, is_text)` runs inside `data_received` for each message, possibly for messages that
    arrived with the upgrade answer, before this returns. `on_close()` runs once the TCP connection is gone.
    `compression` offers permessage-deflate (as websockets' own client does); a server that accepts it moves
    every received byte through the library's slower path."""
    loop = asyncio.get_running_loop()
    connection = WebSocketConnection(url, on_message, max_size=max_size, compression=compression,
                                     on_close=on_close, headers=headers)
    uri = connection.uri
    tls: Any = (ssl_context or tls_context()) if uri.secure else None
    transport: asyncio.Transport | None = None

    async def upgrade() -> None:
        nonlocal transport
        transport, _ = await loop.create_connection(lambda: connection, uri.host, uri.port, ssl=tls,
                                                    server_hostname=uri.host if tls else None)
        await connection._opened

    try:
        await asyncio.wait_for(upgrade(), open_timeout)
    except BaseException:
        if transport is not None:
            transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.wait_closed(), CLOSE_TIMEOUT_SECONDS)
        raise
    return connection


__all__ = ["ConnectionClosed", "InvalidState", "WebSocketConnection", "open_websocket", "tls_context"]
