"""The JSON hub protocol (HubProtocol.md, "JSON Encoding").

Framing: "each message is a JSON object followed by the record separator 0x1E"; several records may share
one transport message. Unknown properties are ignored, as both Microsoft implementations do (the spec calls
them an error; the implementations win). `bytes` payload values are written as base64 strings and aware
`datetime`s as ISO-8601 with `Z`, like System.Text.Json.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

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

RECORD_SEPARATOR = b"\x1e"
_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """JSON bytes of a payload value, as the hub writes them (compact, UTF-8, base64 for bytes)."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def encode_record(value: Mapping[str, Any]) -> bytes:
    return dumps(value) + RECORD_SEPARATOR


def _headers(obj: Mapping[str, Any]) -> Mapping[str, str]:
    headers = obj.get("headers")
    if headers is None:
        return NO_HEADERS
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ProtocolError("Expected 'headers' to be of type Object with String values.")
    return headers


def _string(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        if value is None:
            raise ProtocolError(f"Missing required property '{key}'.")
        raise ProtocolError(f"Expected '{key}' to be of type String.")
    return value


def _optional_string(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ProtocolError(f"Expected '{key}' to be of type String.")
    return value


def _arguments(obj: Mapping[str, Any]) -> list[Any]:
    value = obj.get("arguments")
    if not isinstance(value, list):
        if value is None:
            raise ProtocolError("Missing required property 'arguments'.")
        raise ProtocolError("Expected 'arguments' to be of type Array.")
    return value


def _stream_ids(obj: Mapping[str, Any]) -> tuple[str, ...]:
    value = obj.get("streamIds")
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProtocolError("Expected 'streamIds' to be of type Array of String.")
    return tuple(value)


def _sequence_id(obj: Mapping[str, Any]) -> int:
    value = obj.get("sequenceId")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError("Missing required property 'sequenceId'.")
    if value < 0:
        raise ProtocolError("Expected 'sequenceId' to be a non-negative integer.")
    return value


def parse_message(obj: Any) -> HubMessage:
    """A decoded JSON object -> a hub message. Raises ProtocolError naming what is wrong."""
    if not isinstance(obj, dict):
        raise ProtocolError("Expected a JSON object.")
    kind = obj.get("type")
    if isinstance(kind, bool) or not isinstance(kind, int):
        raise ProtocolError("Missing required property 'type'.")
    if kind == MessageType.INVOCATION:
        invocation_id = _optional_string(obj, "invocationId")
        return InvocationMessage(_string(obj, "target"), _arguments(obj), invocation_id, _stream_ids(obj), _headers(obj))
    if kind == MessageType.STREAM_ITEM:
        if "item" not in obj:
            raise ProtocolError("Missing required property 'item'.")
        return StreamItemMessage(_string(obj, "invocationId"), obj["item"], _headers(obj))
    if kind == MessageType.COMPLETION:
        invocation_id = _string(obj, "invocationId")
        error = _optional_string(obj, "error")
        if error is not None and "result" in obj:
            raise ProtocolError("The 'error' and 'result' properties are mutually exclusive.")
        if error is not None:
            return CompletionMessage(invocation_id, error=error, headers=_headers(obj))
        if "result" in obj:
            return CompletionMessage(invocation_id, result=obj["result"], has_result=True, headers=_headers(obj))
        return CompletionMessage(invocation_id, headers=_headers(obj))
    if kind == MessageType.STREAM_INVOCATION:
        return StreamInvocationMessage(
            _string(obj, "invocationId"), _string(obj, "target"), _arguments(obj), _stream_ids(obj), _headers(obj)
        )
    if kind == MessageType.CANCEL_INVOCATION:
        return CancelInvocationMessage(_string(obj, "invocationId"), _headers(obj))
    if kind == MessageType.PING:
        return PING
    if kind == MessageType.CLOSE:
        allow = obj.get("allowReconnect", False)
        if not isinstance(allow, bool):
            raise ProtocolError("Expected 'allowReconnect' to be of type Boolean.")
        return CloseMessage(_optional_string(obj, "error"), allow)
    if kind == MessageType.ACK:
        return AckMessage(_sequence_id(obj))
    if kind == MessageType.SEQUENCE:
        return SequenceMessage(_sequence_id(obj))
    raise ProtocolError(f"Unknown message type '{kind}'.")


def message_to_object(message: HubMessage) -> dict[str, Any]:
    obj: dict[str, Any] = {"type": int(message.type)}
    if isinstance(message, InvocationMessage):
        if message.invocation_id is not None:
            obj["invocationId"] = message.invocation_id
        obj["target"] = message.target
        obj["arguments"] = message.arguments
        if message.stream_ids:
            obj["streamIds"] = list(message.stream_ids)
    elif isinstance(message, StreamItemMessage):
        obj["invocationId"] = message.invocation_id
        obj["item"] = message.item
    elif isinstance(message, CompletionMessage):
        obj["invocationId"] = message.invocation_id
        if message.error is not None:
            obj["error"] = message.error
        elif message.has_result:
            obj["result"] = message.result
    elif isinstance(message, StreamInvocationMessage):
        obj["invocationId"] = message.invocation_id
        obj["target"] = message.target
        obj["arguments"] = message.arguments
        if message.stream_ids:
            obj["streamIds"] = list(message.stream_ids)
    elif isinstance(message, CancelInvocationMessage):
        obj["invocationId"] = message.invocation_id
    elif isinstance(message, PingMessage):
        pass
    elif isinstance(message, CloseMessage):
        if message.error is not None:
            obj["error"] = message.error
        if message.allow_reconnect:
            obj["allowReconnect"] = True
    elif isinstance(message, AckMessage | SequenceMessage):
        obj["sequenceId"] = message.sequence_id
    headers = getattr(message, "headers", None)
    if headers:
        obj["headers"] = dict(headers)
    return obj


class JsonMessageReader(MessageReader):
    def __init__(self, max_message_size: int) -> None:
        self._buffer = bytearray()
        self._max = max_message_size

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[HubMessage]:
        self._buffer += data
        messages: list[HubMessage] = []
        start = 0
        buffer = self._buffer
        try:
            while True:
                end = buffer.find(RECORD_SEPARATOR, start)
                if end < 0:
                    break
                if end - start > self._max:
                    raise MessageTooLarge(self._max)
                messages.append(parse_record(bytes(buffer[start:end])))
                start = end + 1
        finally:
            del buffer[:start]
        if len(buffer) > self._max:
            raise MessageTooLarge(self._max)
        return messages


def parse_record(record: bytes) -> HubMessage:
    try:
        obj = orjson.loads(record)
    except orjson.JSONDecodeError:
        raise ProtocolError("Error reading JSON.") from None  # .NET's exact text (the parser detail stays out)
    return parse_message(obj)


class JsonHubProtocol(HubProtocol):
    name = "json"
    transfer_format = TransferFormat.TEXT

    def encode(self, message: HubMessage) -> bytes:
        return encode_record(message_to_object(message))

    def reader(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> MessageReader:
        return JsonMessageReader(max_message_size)


def iso_z(moment: datetime) -> str:
    """ISO-8601 UTC with a `Z`, seconds precision unless there are microseconds."""
    text = moment.isoformat().replace("+00:00", "Z")
    return text if text.endswith("Z") else text + "Z"
