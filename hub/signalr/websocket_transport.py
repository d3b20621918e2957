"""The WebSockets transport: one server write = one WebSocket message holding whole records."""

from __future__ import annotations

import inspect
import logging
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from hub.signalr.hub import Hub, HubError
from protocol import (
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
    TransferFormat,
)
from protocol.connection import HandshakeCompleted
from protocol.handshake import HANDSHAKE_OK

log = logging.getLogger("hub.signalr")

PROTOCOLS: dict[str, HubProtocol] = {"json": JsonHubProtocol(), "messagepack": MessagePackHubProtocol()}


async def _send(ws: WebSocket, protocol: HubProtocol | None, data: bytes) -> None:
    if protocol is not None and protocol.transfer_format is TransferFormat.BINARY:
        await ws.send_bytes(data)
    else:
        await ws.send_text(data.decode("utf-8"))


async def serve_websocket(ws: WebSocket, hub: Hub, detailed_errors: bool = False) -> None:
    """Run one hub connection over an accepted-to-be WebSocket until either side closes."""
    await ws.accept()
    methods = type(hub).method_table()
    conn = ServerConnection(PROTOCOLS, TransferFormat.BINARY)
    protocol: HubProtocol | None = None
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data: bytes = message.get("bytes") or (message.get("text") or "").encode("utf-8")
            try:
                events = conn.receive_data(data)
            except HandshakeError as exc:
                await ws.send_text(exc.response.decode("utf-8"))
                await ws.close(1000)
                return
            except ProtocolError as exc:
                if protocol is not None:
                    await _send(ws, protocol, protocol.encode(CloseMessage(exc.close_text)))
                await ws.close(1000)
                return
            for event in events:
                if isinstance(event, HandshakeCompleted):
                    protocol = event.protocol
                    await _send(ws, protocol, HANDSHAKE_OK)
                    continue
                assert protocol is not None
                if isinstance(event, CloseMessage):
                    await ws.close(1000)
                    return
                if isinstance(event, PingMessage):
                    continue
                if isinstance(event, InvocationMessage):
                    reply = await _invoke(hub, methods, event, detailed_errors)
                    if reply is not None and event.invocation_id is not None:
                        await _send(ws, protocol, protocol.encode(reply))
    except WebSocketDisconnect:
        return


async def _invoke(hub: Hub, methods: dict[str, Any], message: InvocationMessage, detailed: bool) -> CompletionMessage | None:
    invocation_id = message.invocation_id or ""
    method = methods.get(message.target.lower())
    if method is None:
        return CompletionMessage.with_error(invocation_id, f"Unknown hub method '{message.target}'")
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
