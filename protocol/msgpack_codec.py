"""The MessagePack hub protocol (HubProtocol.md, "MessagePack (MsgPack) encoding").

Framing (binary): `([Length][Body])*` where Length is an unsigned VarInt, "7 bits per byte, least
significant group first, high bit set when more bytes follow", at most 5 bytes, and Body is one
MessagePack array. Several frames may share one transport message.

Element order is the contract. The JS client writes a 5-element Invocation when it has no stream ids and a
6-element one when it has; both are accepted. `bytes` travel as `bin`, aware `datetime`s as the timestamp
extension type -1, as the Microsoft clients do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack

from protocol.codec import DEFAULT_MAX_MESSAGE_SIZE, HubProtocol, MessageReader, TransferFormat
from protocol.errors import MessageTooLarge, ProtocolError
from protocol.messages import (
    NO_HEADERS,
    PING,
    AckMessage,
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    HubMessage,
    InvocationMessage,
    MessageType,
    PingMessage,
    SequenceMessage,
    StreamInvocationMessage,
    StreamItemMessage,
)

MAX_VARINT_BYTES = 5
""""The maximum length of a message is 2GB - 1", so the prefix never takes more than 5 bytes."""

# Completion ResultKind values.
RESULT_ERROR = 1
RESULT_VOID = 2
RESULT_VALUE = 3

_PING_FRAME = b"\x02\x91\x06"


def _default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return list(value)
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    raise TypeError(f"Type is not MessagePack serializable: {type(value).__name__}")


def packb(value: Any) -> bytes:
    """MessagePack bytes of a payload value as the hub writes them (bin for bytes, timestamp ext for datetime)."""
    data: bytes = msgpack.packb(value, use_bin_type=True, datetime=True, default=_default)
    return data


def unpackb(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, timestamp=3, strict_map_key=False)


def write_varint(length: int) -> bytes:
    out = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def frame(body: bytes) -> bytes:
    return write_varint(len(body)) + body


def _headers(value: Any) -> Mapping[str, str]:
    if not isinstance(value, dict):
        raise ProtocolError("Reading 'headers' as Map failed.")
    if not value:
        return NO_HEADERS
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ProtocolError("Reading 'headers' as Map of String failed.")
    return value


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ProtocolError(f"Reading '{name}' as String failed.")
    return value


def _optional_string(value: Any, name: str) -> str | None:
    return None if value is None else _string(value, name)


def _array(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProtocolError(f"Reading '{name}' as Array failed.")
    return value


def _stream_ids(parts: list[Any], index: int) -> tuple[str, ...]:
    if len(parts) <= index:
        return ()
    ids = _array(parts[index], "streamIds")
    return tuple(_string(i, "streamId") for i in ids)


def _uint(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProtocolError(f"Reading '{name}' as UInt64 failed.")
    return value


def _need(parts: list[Any], count: int, name: str) -> None:
    if len(parts) < count:
        raise ProtocolError(f"Invalid payload for {name} message.")


def parse_array(parts: Any) -> HubMessage:
    """A decoded MessagePack array -> a hub message. Raises ProtocolError naming what is wrong."""
    if not isinstance(parts, list) or not parts:
        raise ProtocolError("Message is not a MessagePack array.")
    kind = parts[0]
    if isinstance(kind, bool) or not isinstance(kind, int):
        raise ProtocolError("Reading 'messageType' as Int32 failed.")
    if kind == MessageType.INVOCATION:
        _need(parts, 5, "Invocation")
        return InvocationMessage(
            _string(parts[3], "target"),
            _array(parts[4], "arguments"),
            _optional_string(parts[2], "invocationId"),
            _stream_ids(parts, 5),
            _headers(parts[1]),
        )
    if kind == MessageType.STREAM_ITEM:
        _need(parts, 4, "StreamItem")
        return StreamItemMessage(_string(parts[2], "invocationId"), parts[3], _headers(parts[1]))
    if kind == MessageType.COMPLETION:
        _need(parts, 4, "Completion")
        invocation_id = _string(parts[2], "invocationId")
        result_kind = parts[3]
        headers = _headers(parts[1])
        if result_kind == RESULT_ERROR:
            _need(parts, 5, "Completion")
            return CompletionMessage(invocation_id, error=_string(parts[4], "error"), headers=headers)
        if result_kind == RESULT_VALUE:
            _need(parts, 5, "Completion")
            return CompletionMessage(invocation_id, result=parts[4], has_result=True, headers=headers)
        if result_kind == RESULT_VOID:
            return CompletionMessage(invocation_id, headers=headers)
        raise ProtocolError("Invalid invocation result kind.")
    if kind == MessageType.STREAM_INVOCATION:
        _need(parts, 5, "StreamInvocation")
        return StreamInvocationMessage(
            _string(parts[2], "invocationId"),
            _string(parts[3], "target"),
            _array(parts[4], "arguments"),
            _stream_ids(parts, 5),
            _headers(parts[1]),
        )
    if kind == MessageType.CANCEL_INVOCATION:
        _need(parts, 3, "CancelInvocation")
        return CancelInvocationMessage(_string(parts[2], "invocationId"), _headers(parts[1]))
    if kind == MessageType.PING:
        return PING
    if kind == MessageType.CLOSE:
        _need(parts, 2, "Close")
        allow = parts[2] if len(parts) > 2 else False
        if not isinstance(allow, bool):
            raise ProtocolError("Reading 'allowReconnect' as Boolean failed.")
        return CloseMessage(_optional_string(parts[1], "error"), allow)
    if kind == MessageType.ACK:
        _need(parts, 2, "Ack")
        return AckMessage(_uint(parts[1], "sequenceId"))
    if kind == MessageType.SEQUENCE:
        _need(parts, 2, "Sequence")
        return SequenceMessage(_uint(parts[1], "sequenceId"))
    raise ProtocolError(f"Unknown message type '{kind}'.")


def message_to_array(message: HubMessage) -> list[Any]:
    if isinstance(message, InvocationMessage):
        # Always 6 elements, stream ids last (empty when none), as .NET writes it: the JS client also reads 5,
        # but .NET-compatible clients (e.g. Python signalrcore) index the 6th element.
        return [1, dict(message.headers), message.invocation_id, message.target, message.arguments,
                list(message.stream_ids)]
    if isinstance(message, StreamItemMessage):
        return [2, dict(message.headers), message.invocation_id, message.item]
    if isinstance(message, CompletionMessage):
        if message.error is not None:
            return [3, dict(message.headers), message.invocation_id, RESULT_ERROR, message.error]
        if message.has_result:
            return [3, dict(message.headers), message.invocation_id, RESULT_VALUE, message.result]
        return [3, dict(message.headers), message.invocation_id, RESULT_VOID]
    if isinstance(message, StreamInvocationMessage):
        return [4, dict(message.headers), message.invocation_id, message.target, message.arguments,
                list(message.stream_ids)]
    if isinstance(message, CancelInvocationMessage):
        return [5, dict(message.headers), message.invocation_id]
    if isinstance(message, PingMessage):
        return [6]
    if isinstance(message, CloseMessage):
        return [7, message.error, message.allow_reconnect]
    return [int(message.type), message.sequence_id]


class MessagePackMessageReader(MessageReader):
    def __init__(self, max_message_size: int) -> None:
        self._buffer = bytearray()
        self._max = max_message_size

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[HubMessage]:
        """Whole messages in what has arrived so far. Records are read in place from `data` (no copy of the
        common case, a read holding whole records); only an incomplete tail is kept for the next call."""
        if self._buffer:
            self._buffer += data
            data = bytes(self._buffer)
            self._buffer.clear()
        view = memoryview(data)
        size = len(view)
        messages: list[HubMessage] = []
        pos = 0
        try:
            while pos < size:
                byte = view[pos]
                if byte < 0x80:  # a one-byte length prefix: messages under 128 bytes
                    length, index = byte, pos + 1
                else:
                    length, index = self._long_prefix(view, pos)
                    if index < 0:
                        break  # the prefix itself is incomplete
                if length > self._max:
                    raise MessageTooLarge(self._max)
                if index + length > size:
                    break
                pos = index + length
                messages.append(parse_body(view[index:pos]))
        finally:
            if pos < size:
                self._buffer += view[pos:]
            view.release()
        return messages

    @staticmethod
    def _long_prefix(view: memoryview, pos: int) -> tuple[int, int]:
        """(length, index of the body) of a multi-byte varint prefix at `pos`; index -1 when incomplete."""
        length = 0
        shift = 0
        index = pos
        while True:
            if index >= len(view):
                return 0, -1
            if index - pos >= MAX_VARINT_BYTES:
                raise ProtocolError("Messages over 2GB in size are not supported.")
            byte = view[index]
            length |= (byte & 0x7F) << shift
            index += 1
            shift += 7
            if not byte & 0x80:
                return length, index


def parse_body(body: bytes | memoryview) -> HubMessage:
    try:
        parts = unpackb(body)  # type: ignore[arg-type]  # msgpack reads any buffer; bin fields come out as bytes
    except Exception as exc:  # msgpack raises several unrelated types for malformed input
        raise ProtocolError(f"Error reading MessagePack: {type(exc).__name__}.") from None
    return parse_array(parts)


class MessagePackHubProtocol(HubProtocol):
    name = "messagepack"
    transfer_format = TransferFormat.BINARY

    def encode(self, message: HubMessage) -> bytes:
        if isinstance(message, PingMessage):
            return _PING_FRAME
        return frame(packb(message_to_array(message)))

    def reader(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> MessageReader:
        return MessagePackMessageReader(max_message_size)
