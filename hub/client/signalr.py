"""A small async SignalR hub client over WebSockets, built on the sans-I/O `protocol` package.

It does what VoiceHub's own tools need (simulated callers, monitors in tests and scripts): negotiate,
the handshake, JSON or MessagePack, `invoke` (awaits the Completion), `send` (fire and forget), event
handlers, keep-alive pings and a clean close. No automatic reconnect: callers decide what a drop means.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from hub.client.ws_transport import ConnectionClosed, WebSocketConnection, open_websocket
from hub.client.ws_transport import tls_context as tls_context
from protocol.codec import HubProtocol, MessageReader
from protocol.json_codec import JsonHubProtocol
from protocol.messages import (
    PING,
    CloseMessage,
    CompletionMessage,
    HubMessage,
    InvocationMessage,
)
from protocol.msgpack_codec import MessagePackHubProtocol

log = logging.getLogger("hub.client")

Handler = Callable[[list[Any]], Awaitable[None] | None]
KEEP_ALIVE_SECONDS = 15.0
HANDSHAKE_TIMEOUT_SECONDS = 15.0
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
BACKLOG_PAUSE = 256  # messages waiting behind an async handler before the socket stops being read


class HubError(Exception):
    """A Completion error from the server, or a connection that closed before the answer."""


class NegotiateRefused(HubError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"negotiate answered {status}: {body or '(empty body)'}")
        self.status = status


class HubClient:
    """One hub connection. `await HubClient.connect(url, token=...)`, then `on`, `invoke`, `send`, `close`.

    Messages are parsed and dispatched inside the socket's `data_received` (hub.client.ws_transport): no task
    switch per message. Handlers may be sync or async; sync ones run inline. When a handler returns an
    awaitable, everything received after it (events, completions, Close) waits on one task and runs in order
    once it is done; the socket stops being read while BACKLOG_PAUSE messages wait."""

    def __init__(self, protocol: HubProtocol) -> None:
        self.protocol = protocol
        self.connection_id: str | None = None
        self.close_error: str | None = None
        self.allow_reconnect = False
        self.closed = asyncio.Event()
        self._ws: WebSocketConnection | None = None
        self._handlers: dict[str, list[Handler]] = {}
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        self._reader: MessageReader = protocol.reader(max_message_size=MAX_MESSAGE_BYTES)
        self._handshake: asyncio.Future[None] | None = None
        self._handshake_bytes = bytearray()
        self._ready = False  # the handshake answer was {}: messages are hub messages
        self._failed = False  # a handler or the parser failed: nothing more is dispatched
        self._backlog: deque[HubMessage] | None = None  # received behind a running async handler, in order
        self._backlog_task: asyncio.Task[None] | None = None
        self._reading_paused = False
        self._socket_closed = False

    # --- connection -------------------------------------------------------------------------------
    @classmethod
    async def connect(cls, url: str, *, token: str | None = None, query: dict[str, str] | None = None,
                      msgpack: bool = False, handlers: Mapping[str, Handler] | None = None) -> HubClient:
        """Negotiate and open a WebSocket to the hub at `url` (http or https). `handlers` are registered
        before the handshake so no early event is missed."""
        client = cls(MessagePackHubProtocol() if msgpack else JsonHubProtocol())
        for name, handler in (handlers or {}).items():
            client.on(name, handler)
        await client._open(url, token, dict(query or {}))
        return client

    async def _open(self, url: str, token: str | None, query: dict[str, str]) -> None:
        parts = urlsplit(url)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        negotiate_query = urlencode({**query, "negotiateVersion": "1"})
        negotiate_url = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + "/negotiate", negotiate_query, ""))
        async with httpx.AsyncClient(timeout=HANDSHAKE_TIMEOUT_SECONDS, verify=tls_context()) as http:
            response = await http.post(negotiate_url, headers=headers)
        if response.status_code != 200:
            raise NegotiateRefused(response.status_code, response.text)
        body = response.json()
        if "error" in body:
            raise HubError(str(body["error"]))
        self.connection_id = body.get("connectionId")
        ws_query = {**query, "id": body.get("connectionToken") or body.get("connectionId") or ""}
        if token:
            ws_query["access_token"] = token
        scheme = "wss" if parts.scheme == "https" else "ws"
        ws_url = urlunsplit((scheme, parts.netloc, parts.path, urlencode(ws_query), ""))
        self._handshake = asyncio.get_running_loop().create_future()
        self._ws = await open_websocket(ws_url, self._on_message, on_close=self._on_socket_closed,
                                        max_size=MAX_MESSAGE_BYTES, open_timeout=HANDSHAKE_TIMEOUT_SECONDS)
        try:
            await self._ws.send(f'{{"protocol":"{self.protocol.name}","version":1}}\x1e')
            await asyncio.wait_for(asyncio.shield(self._handshake), HANDSHAKE_TIMEOUT_SECONDS)
        except ConnectionClosed as exc:
            await self._ws.close()
            raise HubError(f"connection closed during the handshake: {exc}") from None
        except BaseException:
            await self._ws.close()
            raise
        self._tasks.append(asyncio.create_task(self._keep_alive()))

    def _on_message(self, data: bytes, text: bool) -> None:
        """Called by the socket for each WebSocket message, in the event loop's read callback."""
        if not self._ready:
            if not self._read_handshake(data):
                return
            data = bytes(self._handshake_bytes)
            self._handshake_bytes.clear()
            if not data:
                return
        if self._failed:
            return
        try:
            messages = self._reader.feed(data)
        except Exception as exc:  # a protocol error from the server is fatal for this client
            self._fail(exc)
            return
        backlog = self._backlog
        if backlog is not None:
            backlog.extend(messages)
            if len(backlog) >= BACKLOG_PAUSE and not self._reading_paused and self._ws is not None:
                self._reading_paused = True
                self._ws.pause_reading()
            return
        for index, message in enumerate(messages):
            try:
                waiting = self._dispatch(message)
            except Exception as exc:
                self._fail(exc)
                return
            if waiting is not None:
                self._backlog = deque(messages[index + 1:])
                self._backlog_task = asyncio.get_running_loop().create_task(self._run_backlog(waiting))
                return

    def _read_handshake(self, data: bytes) -> bool:
        """Collect the handshake answer; True once it was {} (what followed it stays in _handshake_bytes)."""
        future = self._handshake
        if future is None or future.done():
            return False
        self._handshake_bytes += data
        end = self._handshake_bytes.find(b"\x1e")
        if end < 0:
            return False
        answer = bytes(self._handshake_bytes[:end])
        del self._handshake_bytes[: end + 1]
        if answer != b"{}":
            future.set_exception(HubError(f"handshake refused: {answer.decode(errors='replace')}"))
            future.exception()  # raised by _open (not logged if its wait already timed out)
            return False
        self._ready = True
        future.set_result(None)
        return True

    def _dispatch(self, message: HubMessage) -> Awaitable[None] | None:
        """Handle one message; returns what is still to be awaited when an async handler is running."""
        if isinstance(message, InvocationMessage):
            handlers = self._handlers.get(message.target.lower())
            if handlers:
                for index, handler in enumerate(handlers):
                    result = handler(list(message.arguments))
                    if result is not None:
                        rest = handlers[index + 1:]
                        return self._then(result, rest, message) if rest else result
        elif isinstance(message, CompletionMessage):
            future = self._pending.pop(message.invocation_id, None)
            if future is not None and not future.done():
                if message.error is not None:
                    future.set_exception(HubError(message.error))
                else:
                    future.set_result(message.result)
        elif isinstance(message, CloseMessage):
            self.close_error = message.error
            self.allow_reconnect = message.allow_reconnect
        return None

    @staticmethod
    async def _then(first: Awaitable[None], handlers: list[Handler], message: InvocationMessage) -> None:
        await first
        for handler in handlers:
            result = handler(list(message.arguments))
            if result is not None:
                await result

    async def _run_backlog(self, first: Awaitable[None]) -> None:
        try:
            await first
            backlog = self._backlog
            while backlog and not self._failed:
                waiting = self._dispatch(backlog.popleft())
                if waiting is not None:
                    await waiting
                if self._reading_paused and len(backlog) < BACKLOG_PAUSE // 2 and self._ws is not None:
                    self._reading_paused = False
                    self._ws.resume_reading()
        except Exception as exc:
            self._fail(exc)
        finally:
            self._backlog = None
            self._backlog_task = None
            if self._reading_paused and self._ws is not None:
                self._reading_paused = False
                self._ws.resume_reading()
            if self._socket_closed:
                self._finish()

    def _fail(self, exc: Exception) -> None:
        """A handler or the parser failed: stop dispatching, close the socket, fail what waits."""
        log.warning("hub client read failed: %s", exc)
        self.close_error = self.close_error or f"client error: {exc}"
        self._failed = True
        if self._ws is not None:
            self._ws.close_nowait(1011, "client error")
        self._finish()

    def _on_socket_closed(self) -> None:
        self._socket_closed = True
        if self._handshake is not None and not self._handshake.done():
            self._handshake.set_exception(HubError("connection closed during the handshake"))
            self._handshake.exception()  # raised by _open if it still waits
        if self._backlog_task is None:  # else it finishes what was received before the close first
            self._finish()

    async def _keep_alive(self) -> None:
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            while self._ws is not None and not self.closed.is_set():
                await asyncio.sleep(KEEP_ALIVE_SECONDS)
                await self._ws.send(self._encode(PING))

    def _finish(self) -> None:
        reason = self.close_error or "connection closed"
        for future in self._pending.values():
            if not future.done():
                future.set_exception(HubError(f"connection closed before the answer ({reason})"))
        self._pending.clear()
        self.closed.set()

    def _encode(self, message: HubMessage) -> str | bytes:
        data = self.protocol.encode(message)
        return data.decode() if self.protocol.name == "json" else data

    # --- API ----------------------------------------------------------------------------------------
    def on(self, target: str, handler: Handler) -> None:
        """Call `handler(arguments)` for every invocation of `target` (case-insensitive)."""
        self._handlers.setdefault(target.lower(), []).append(handler)

    async def invoke(self, target: str, *arguments: Any, seconds: float = 30.0) -> Any:
        """Invoke a hub method and return its result; raises HubError with the server's error text."""
        if self._ws is None or self.closed.is_set():
            raise HubError(f"cannot invoke {target}: the connection is closed")
        invocation_id = str(next(self._ids))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[invocation_id] = future
        try:  # popped however this ends (also when cancelled while sending: no orphan future fails later)
            try:
                await self._ws.send(self._encode(InvocationMessage(target, list(arguments), invocation_id)))
            except ConnectionClosed as exc:
                raise HubError(f"cannot invoke {target}: {exc}") from None
            return await asyncio.wait_for(future, seconds)
        finally:
            self._pending.pop(invocation_id, None)
            if future.done() and not future.cancelled():
                future.exception()  # failed by a close while sending: the HubError raised here says it

    async def send(self, target: str, *arguments: Any) -> None:
        """Invoke without waiting for a result (no invocation id)."""
        if self._ws is None or self.closed.is_set():
            raise HubError(f"cannot send {target}: the connection is closed")
        try:
            await self._ws.send(self._encode(InvocationMessage(target, list(arguments))))
        except ConnectionClosed as exc:
            raise HubError(f"cannot send {target}: {exc}") from None

    async def close(self) -> None:
        """Send Close, close the socket and wait for the reader to stop."""
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(ConnectionClosed, OSError):
                await ws.send(self._encode(CloseMessage()))
            await ws.close()
        tasks = [*self._tasks, *([self._backlog_task] if self._backlog_task is not None else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._finish()

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
