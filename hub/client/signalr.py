"""A small async SignalR hub client over WebSockets, built on the sans-I/O `protocol` package.

It does what VoiceHub's own tools need (simulated callers, monitors in tests and scripts): negotiate,
the handshake, JSON or MessagePack, `invoke` (awaits the Completion), `send` (fire and forget), event
handlers, keep-alive pings and a clean close. No automatic reconnect: callers decide what a drop means.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from protocol.codec import HubProtocol
from protocol.json_codec import JsonHubProtocol
from protocol.messages import (
    PING,
    CloseMessage,
    CompletionMessage,
    HubMessage,
    InvocationMessage,
    PingMessage,
)
from protocol.msgpack_codec import MessagePackHubProtocol

log = logging.getLogger("hub.client")

Handler = Callable[[list[Any]], Awaitable[None] | None]
KEEP_ALIVE_SECONDS = 15.0
HANDSHAKE_TIMEOUT_SECONDS = 15.0


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process: httpx builds a new one (loading every CA certificate, ~20 ms of CPU) for each
    client otherwise, which blocked the event loop of processes opening hundreds of connections."""
    return ssl.create_default_context()


class HubError(Exception):
    """A Completion error from the server, or a connection that closed before the answer."""


class NegotiateRefused(HubError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"negotiate answered {status}: {body or '(empty body)'}")
        self.status = status


class HubClient:
    """One hub connection. `await HubClient.connect(url, token=...)`, then `on`, `invoke`, `send`, `close`."""

    def __init__(self, protocol: HubProtocol) -> None:
        self.protocol = protocol
        self.connection_id: str | None = None
        self.close_error: str | None = None
        self.allow_reconnect = False
        self.closed = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._handlers: dict[str, list[Handler]] = {}
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []

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
        self._ws = await connect(ws_url, max_size=4 * 1024 * 1024, open_timeout=HANDSHAKE_TIMEOUT_SECONDS,
                                 ping_interval=None)
        await self._ws.send(f'{{"protocol":"{self.protocol.name}","version":1}}\x1e')
        reply = await asyncio.wait_for(self._ws.recv(), HANDSHAKE_TIMEOUT_SECONDS)
        raw = reply.encode() if isinstance(reply, str) else reply
        end = raw.index(b"\x1e")
        handshake = raw[:end]
        if handshake != b"{}":
            await self._ws.close()
            raise HubError(f"handshake refused: {handshake.decode(errors='replace')}")
        reader = self.protocol.reader(max_message_size=4 * 1024 * 1024)
        rest = raw[end + 1:]
        self._tasks.append(asyncio.create_task(self._read(reader, rest)))
        self._tasks.append(asyncio.create_task(self._keep_alive()))

    async def _read(self, reader: Any, first: bytes) -> None:
        assert self._ws is not None
        try:
            if first:
                await self._dispatch(reader.feed(first))
            async for frame in self._ws:
                await self._dispatch(reader.feed(frame.encode() if isinstance(frame, str) else frame))
        except ConnectionClosed:
            pass
        except Exception as exc:  # a protocol error from the server is fatal for this client
            log.warning("hub client read failed: %s", exc)
            self.close_error = self.close_error or f"client error: {exc}"
        finally:
            self._finish()

    async def _dispatch(self, messages: list[HubMessage]) -> None:
        for message in messages:
            if isinstance(message, InvocationMessage):
                for handler in self._handlers.get(message.target.lower(), []):
                    result = handler(list(message.arguments))
                    if result is not None:
                        await result
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
            elif isinstance(message, PingMessage):
                pass

    async def _keep_alive(self) -> None:
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            while self._ws is not None:
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
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._finish()

    async def __aenter__(self) -> HubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
