"""Per-connection protocol state: handshake first, then hub messages, then closed.

Rule: everything that decides what the bytes a client sends mean lives here; the transport only moves
bytes. `receive_data` returns `HandshakeCompleted` once (the transport then sends `HANDSHAKE_OK`), then the
decoded hub messages. It raises `HandshakeError` (send its `response`, then close) or `ProtocolError`
(send a Close carrying `close_text`, then close).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from protocol.codec import DEFAULT_MAX_MESSAGE_SIZE, HubProtocol, MessageReader, TransferFormat
from protocol.errors import HandshakeError, ProtocolError
from protocol.handshake import handshake_error, parse_handshake, select_protocol
from protocol.json_codec import RECORD_SEPARATOR
from protocol.messages import HubMessage


class ConnectionState(Enum):
    #: Waiting for the client's handshake record.
    HANDSHAKE = "handshake"
    #: Handshake done: hub messages flow both ways.
    OPEN = "open"
    #: Closed by either side; further data is ignored.
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class HandshakeCompleted:
    protocol: HubProtocol
    version: int
    stateful_reconnect: bool


ConnectionEvent = HandshakeCompleted | HubMessage


class ServerConnection:
    def __init__(
        self,
        protocols: Mapping[str, HubProtocol],
        transport_format: TransferFormat,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        stateful_reconnect_negotiated: bool = False,
    ) -> None:
        self.state = ConnectionState.HANDSHAKE
        self.protocol: HubProtocol | None = None
        self.stateful_reconnect = False
        self._protocols = protocols
        self._transport_format = transport_format
        self._max = max_message_size
        self._stateful_negotiated = stateful_reconnect_negotiated
        self._handshake_buffer = bytearray()
        self._reader: MessageReader | None = None

    def receive_data(self, data: bytes) -> list[ConnectionEvent]:
        if self.state is ConnectionState.CLOSED:
            return []
        if self.state is ConnectionState.OPEN:
            assert self._reader is not None
            return list(self._reader.feed(data))
        self._handshake_buffer += data
        end = self._handshake_buffer.find(RECORD_SEPARATOR)
        if end < 0:
            if len(self._handshake_buffer) > self._max:
                self.state = ConnectionState.CLOSED
                raise handshake_error("Handshake was canceled.")
            return []
        record = bytes(self._handshake_buffer[:end])
        rest = bytes(self._handshake_buffer[end + 1 :])
        self._handshake_buffer = bytearray()
        try:
            request = parse_handshake(record)
            protocol = select_protocol(request, self._protocols, self._transport_format)
        except HandshakeError:
            self.state = ConnectionState.CLOSED
            raise
        self.protocol = protocol
        # "On a connection negotiated for stateful reconnect a handshake version < 2 turns the feature off."
        self.stateful_reconnect = self._stateful_negotiated and request.version >= 2
        self._reader = protocol.reader(self._max)
        self.state = ConnectionState.OPEN
        events: list[ConnectionEvent] = [HandshakeCompleted(protocol, request.version, self.stateful_reconnect)]
        if rest:
            events.extend(self._reader.feed(rest))
        return events

    def close(self) -> None:
        self.state = ConnectionState.CLOSED


__all__ = ["ConnectionEvent", "ConnectionState", "HandshakeCompleted", "ProtocolError", "ServerConnection"]
