"""The WebSockets transport: one server write = one WebSocket message holding whole records."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from hub.signalr.hub import Hub, HubError
from protocol import (
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    HandshakeError,
    HubProtocol,
    InvocationMessage,
    JsonHubProtocol,
    MessagePackHubProtocol,
    PingMessage,
    ProtocolError,
    ServerConnection,
    StreamInvocationMessage,
    StreamItemMessage,
    TransferFormat,
)
from protocol.connection import HandshakeCompleted
from protocol.handshake import HANDSHAKE_OK

log = logging.getLogger("hub.signalr")

PROTOCOLS: dict[str, HubProtocol] = {"json": JsonHubProtocol(), "messagepack": MessagePackHubProtocol()}


KEEP_ALIVE_INTERVAL = 15.0
"""`HubOptions.KeepAliveInterval`: a Ping goes out when nothing was sent for this long."""


class _Writer:
    """Serialises writes of the receive loop and the keep-alive task on one WebSocket."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.lock = asyncio.Lock()
        self.last_send = asyncio.get_running_loop().time()

    async def send(self, protocol: HubProtocol | None, data: bytes) -> None:
        async with self.lock:
            if protocol is not None and protocol.transfer_format is TransferFormat.BINARY:
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_text(data.decode("utf-8"))
            self.last_send = asyncio.get_running_loop().time()


async def _keep_alive(writer: _Writer, protocol: HubProtocol, interval: float) -> None:
    loop = asyncio.get_running_loop()
    ping = protocol.encode(PingMessage())
    while True:
        idle = loop.time() - writer.last_send
        if idle >= interval:
            await writer.send(protocol, ping)
            idle = 0.0
        await asyncio.sleep(interval - idle)


async def serve_websocket(
    ws: WebSocket, hub: Hub, detailed_errors: bool = False, keep_alive: float = KEEP_ALIVE_INTERVAL
) -> None:
    """Run one hub connection over a WebSocket until either side closes; Pings go out on idle links."""
    await ws.accept()
    writer = _Writer(ws)
    methods = type(hub).method_table()
    conn = ServerConnection(PROTOCOLS, TransferFormat.BINARY)
    protocol: HubProtocol | None = None
    pinger: asyncio.Task[None] | None = None
    streams: dict[str, asyncio.Task[None]] = {}
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data: bytes = message.get("bytes") or (message.get("text") or "").encode("utf-8")
            try:
                events = conn.receive_data(data)
            except HandshakeError as exc:
                await writer.send(None, exc.response)
                await ws.close(1000)
                return
            except ProtocolError as exc:
                if protocol is not None:
                    await writer.send(protocol, protocol.encode(CloseMessage(exc.close_text)))
                await ws.close(1000)
                return
            for event in events:
                if isinstance(event, HandshakeCompleted):
                    protocol = event.protocol
                    await writer.send(protocol, HANDSHAKE_OK)
                    pinger = asyncio.create_task(_keep_alive(writer, protocol, keep_alive))
                    continue
                assert protocol is not None
                if isinstance(event, CloseMessage):
                    await ws.close(1000)
                    return
                if isinstance(event, StreamInvocationMessage):
                    streams[event.invocation_id] = asyncio.create_task(
                        _stream(writer, protocol, hub, methods, event, detailed_errors, streams)
                    )
                    continue
                if isinstance(event, CancelInvocationMessage):
                    task = streams.pop(event.invocation_id, None)
                    if task is not None:
                        task.cancel()
                    continue
                if isinstance(event, InvocationMessage):
                    reply = await _invoke(hub, methods, event, detailed_errors)
                    if reply is not None and event.invocation_id is not None:
                        await writer.send(protocol, protocol.encode(reply))
    except WebSocketDisconnect:
        return
    finally:
        if pinger is not None:
            pinger.cancel()
        for task in streams.values():
            task.cancel()


async def _stream(
    writer: _Writer,
    protocol: HubProtocol,
    hub: Hub,
    methods: dict[str, Any],
    message: StreamInvocationMessage,
    detailed: bool,
    streams: dict[str, asyncio.Task[None]],
) -> None:
    """Run a streaming method: StreamItems, then a Completion (with an error if it failed)."""
    invocation_id = message.invocation_id
    method = methods.get(message.target.lower())
    try:
        if method is None:
            reply = CompletionMessage.with_error(invocation_id, f"Unknown hub method '{message.target}'")
        elif not inspect.isasyncgenfunction(method):
            reply = CompletionMessage.with_error(
                invocation_id,
                f"The client attempted to invoke the non-streaming '{message.target}' method with a streaming invocation.",
            )
        else:
            try:
                async for item in method(hub, *message.arguments):
                    await writer.send(protocol, protocol.encode(StreamItemMessage(invocation_id, item)))
                reply = CompletionMessage(invocation_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                text = "An error occurred on the server while streaming results."
                if detailed or isinstance(exc, HubError):
                    text += f" {'HubException' if isinstance(exc, HubError) else type(exc).__name__}: {exc}"
                reply = CompletionMessage.with_error(invocation_id, text)
        await writer.send(protocol, protocol.encode(reply))
    finally:
        streams.pop(invocation_id, None)


async def _invoke(hub: Hub, methods: dict[str, Any], message: InvocationMessage, detailed: bool) -> CompletionMessage | None:
    invocation_id = message.invocation_id or ""
    method = methods.get(message.target.lower())
    if method is None:
        return CompletionMessage.with_error(invocation_id, f"Unknown hub method '{message.target}'")
    if inspect.isasyncgenfunction(method):
        return CompletionMessage.with_error(
            invocation_id,
            f"The client attempted to invoke the streaming '{message.target}' method with a non-streaming invocation.",
        )
    signature = inspect.signature(method)
    if len(signature.parameters) - 1 != len(message.arguments):
        return CompletionMessage.with_error(invocation_id, f"Failed to invoke '{message.target}' due to an error on the server.")
    try:
        result = method(hub, *message.arguments)
        if inspect.isawaitable(result):
            result = await result
    except HubError as exc:
        text = f"An unexpected error occurred invoking '{message.target}' on the server. HubException: {exc}"
        return CompletionMessage.with_error(invocation_id, text)
    except Exception as exc:
        log.exception("hub method %s failed", message.target)
        text = f"An unexpected error occurred invoking '{message.target}' on the server."
        if detailed:
            text += f" {type(exc).__name__}: {exc}"
        return CompletionMessage.with_error(invocation_id, text)
    if signature.return_annotation in (None, "None"):
        return CompletionMessage(invocation_id)
    return CompletionMessage.with_result(invocation_id, result)
