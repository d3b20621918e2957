"""Sans-I/O SignalR hub protocol: messages, codecs, handshake, negotiate, connection state.

Nothing in this package does I/O or imports asyncio, starlette or redis. The transport layer feeds bytes
in (`receive_data`) and takes bytes out (`encode`, `data_to_send`). See ../shared/signalr-protocol.md.
"""

from __future__ import annotations

from protocol.codec import HubProtocol, TransferFormat
from protocol.connection import ConnectionState, ServerConnection
from protocol.errors import HandshakeError, MessageTooLarge, ProtocolError
from protocol.json_codec import JsonHubProtocol
from protocol.messages import (
    AckMessage,
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    HubMessage,
    InvocationMessage,
    PingMessage,
    SequenceMessage,
    StreamInvocationMessage,
    StreamItemMessage,
)
from protocol.msgpack_codec import MessagePackHubProtocol

__all__ = [
    "AckMessage",
    "CancelInvocationMessage",
    "CloseMessage",
    "CompletionMessage",
    "ConnectionState",
    "HandshakeError",
    "HubMessage",
    "HubProtocol",
    "InvocationMessage",
    "JsonHubProtocol",
    "MessagePackHubProtocol",
    "MessageTooLarge",
    "PingMessage",
    "ProtocolError",
    "SequenceMessage",
    "ServerConnection",
    "StreamInvocationMessage",
    "StreamItemMessage",
    "TransferFormat",
]
