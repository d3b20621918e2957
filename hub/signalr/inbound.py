"""Bytes from a client, whatever the transport: handshake first, then hub messages to the dispatcher."""

from __future__ import annotations

import logging
import time

from hub.signalr.clients import GroupManager, HubClients
from hub.signalr.context import HubConnectionContext, State
from hub.signalr.dispatcher import Dispatcher
from hub.signalr.hub import HubError
from protocol import HandshakeError, JsonHubProtocol, MessagePackHubProtocol, ProtocolError, ServerConnection, TransferFormat
from protocol.codec import HubProtocol
from protocol.connection import HandshakeCompleted
from protocol.handshake import HANDSHAKE_OK
from protocol.negotiate import Transport

log = logging.getLogger("hub.signalr")

PROTOCOLS: dict[str, HubProtocol] = {"json": JsonHubProtocol(), "messagepack": MessagePackHubProtocol()}


def attach_parser(connection: HubConnectionContext, transport: Transport) -> ServerConnection:
    fmt = TransferFormat.TEXT if transport is Transport.SERVER_SENT_EVENTS else TransferFormat.BINARY
    parser = ServerConnection(
        PROTOCOLS,
        fmt,
        max_message_size=connection.options.max_message_size,
        stateful_reconnect_negotiated=connection.stateful_negotiated and transport is Transport.WEB_SOCKETS,
    )
    connection.items["_parser"] = parser
    return parser


async def receive(connection: HubConnectionContext, data: bytes) -> bool:
    """Feed what the client sent; False when the connection is ending (the transport should stop reading)."""
    if connection.state is State.CLOSED:
        return False
    parser: ServerConnection = connection.items["_parser"]
    connection.last_received = time.monotonic()
    try:
        events = parser.receive_data(data)
    except HandshakeError as exc:
        log.info("connection %s: handshake refused: %s", connection.connection_id, exc)
        connection.send_raw(exc.response.decode("utf-8"))
        connection.closing = True
        connection.queue.wake()
        return False
    except ProtocolError as exc:
        log.info("connection %s: protocol error: %s", connection.connection_id, exc)
        _close_for(connection, exc)
        return False
    connection.manager.metrics_messages_in += len(events)
    for event in events:
        if isinstance(event, HandshakeCompleted):
            await _open(connection, event)
            if connection.closing:
                return False
            continue
        dispatcher = connection.dispatcher
        if dispatcher is None:
            return False
        try:
            keep = await dispatcher.handle(event)
        except ProtocolError as exc:
            log.info("connection %s: protocol error: %s", connection.connection_id, exc)
            _close_for(connection, exc)
            return False
        if not keep:
            connection.manager.dispose(connection, None)
            return False
    return True


def _close_for(connection: HubConnectionContext, exc: ProtocolError) -> None:
    """Like .NET's HubConnectionHandler: details only with detailed errors; allowReconnect stays true (only
    Context.Abort() or a failing OnConnectedAsync turn it off)."""
    text = exc.close_text if connection.options.detailed_errors else "Connection closed with an error."
    connection.close(text, allow_reconnect=True)


async def _open(connection: HubConnectionContext, event: HandshakeCompleted) -> None:
    protocol = event.protocol
    connection.protocol = protocol
    if event.stateful_reconnect and connection.transport is Transport.WEB_SOCKETS:
        connection.enable_stateful()
    connection.send_raw(HANDSHAKE_OK.decode("utf-8") if protocol.transfer_format is TransferFormat.TEXT else HANDSHAKE_OK)
    connection.state = State.OPEN
    manager = connection.manager
    hub = manager.hub_factory()
    hub.context = connection
    hub.clients = HubClients(manager, connection)
    hub.groups = GroupManager(manager, connection)
    connection.dispatcher = Dispatcher(connection, hub, connection.options.detailed_errors)
    manager.opened(connection)
    try:
        await hub.on_connected()
    except Exception as exc:
        text = "Connection closed with an error."
        if isinstance(exc, HubError):
            text += f" HubException: {exc}"
        elif connection.options.detailed_errors:
            text += f" {type(exc).__name__}: {exc}"
        else:
            log.exception("on_connected of %s failed", connection.connection_id)
        connection.close(text, allow_reconnect=False)
