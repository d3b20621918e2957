"""The nine hub message types of the SignalR hub protocol (HubProtocol.md, "Message Types").

Each is a frozen dataclass; the codecs turn them into bytes and back. Field names follow the spec's
camelCase names in snake_case. `headers` may appear on every type except Ping, Close, Ack and Sequence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from types import MappingProxyType
from typing import Any, ClassVar


class MessageType(IntEnum):
    #: A call of a method on the other side; with an id the caller expects one Completion.
    INVOCATION = 1
    #: One item of a stream (server-to-client result stream or client-to-server upload).
    STREAM_ITEM = 2
    #: The end of an invocation or stream: an error, a result, or neither (void).
    COMPLETION = 3
    #: A call of a streaming method (server answers with StreamItems, then a Completion).
    STREAM_INVOCATION = 4
    #: The caller no longer wants the stream it asked for.
    CANCEL_INVOCATION = 5
    #: Keep-alive; carries nothing.
    PING = 6
    #: The sender is closing the connection, maybe with an error and a hint to reconnect.
    CLOSE = 7
    #: Stateful reconnect: the highest sequence id processed so far.
    ACK = 8
    #: Stateful reconnect: the id of the first message that follows.
    SEQUENCE = 9


NO_HEADERS: Mapping[str, str] = MappingProxyType({})


def _no_headers() -> Mapping[str, str]:
    return NO_HEADERS


@dataclass(frozen=True, slots=True)
class InvocationMessage:
    type: ClassVar[MessageType] = MessageType.INVOCATION
    target: str
    arguments: Sequence[Any]
    invocation_id: str | None = None
    stream_ids: Sequence[str] = ()
    headers: Mapping[str, str] = field(default_factory=_no_headers)


@dataclass(frozen=True, slots=True)
class StreamItemMessage:
    type: ClassVar[MessageType] = MessageType.STREAM_ITEM
    invocation_id: str
    item: Any
    headers: Mapping[str, str] = field(default_factory=_no_headers)


@dataclass(frozen=True, slots=True)
class CompletionMessage:
    """`has_result` tells `result: null` (a method that returned None) from a void completion."""

    type: ClassVar[MessageType] = MessageType.COMPLETION
    invocation_id: str
    error: str | None = None
    result: Any = None
    has_result: bool = False
    headers: Mapping[str, str] = field(default_factory=_no_headers)

    @classmethod
    def with_result(cls, invocation_id: str, result: Any) -> CompletionMessage:
        return cls(invocation_id, result=result, has_result=True)

    @classmethod
    def with_error(cls, invocation_id: str, error: str) -> CompletionMessage:
        return cls(invocation_id, error=error)


@dataclass(frozen=True, slots=True)
class StreamInvocationMessage:
    type: ClassVar[MessageType] = MessageType.STREAM_INVOCATION
    invocation_id: str
    target: str
    arguments: Sequence[Any]
    stream_ids: Sequence[str] = ()
    headers: Mapping[str, str] = field(default_factory=_no_headers)


@dataclass(frozen=True, slots=True)
class CancelInvocationMessage:
    type: ClassVar[MessageType] = MessageType.CANCEL_INVOCATION
    invocation_id: str
    headers: Mapping[str, str] = field(default_factory=_no_headers)


@dataclass(frozen=True, slots=True)
class PingMessage:
    type: ClassVar[MessageType] = MessageType.PING


@dataclass(frozen=True, slots=True)
class CloseMessage:
    type: ClassVar[MessageType] = MessageType.CLOSE
    error: str | None = None
    allow_reconnect: bool = False


@dataclass(frozen=True, slots=True)
class AckMessage:
    type: ClassVar[MessageType] = MessageType.ACK
    sequence_id: int


@dataclass(frozen=True, slots=True)
class SequenceMessage:
    type: ClassVar[MessageType] = MessageType.SEQUENCE
    sequence_id: int


HubMessage = (
    InvocationMessage
    | StreamItemMessage
    | CompletionMessage
    | StreamInvocationMessage
    | CancelInvocationMessage
    | PingMessage
    | CloseMessage
    | AckMessage
    | SequenceMessage
)

#: Messages that stateful reconnect numbers and buffers until acked (HubProtocol.md, "Stateful reconnect").
TRACKABLE_TYPES = frozenset(
    {
        MessageType.INVOCATION,
        MessageType.STREAM_ITEM,
        MessageType.COMPLETION,
        MessageType.STREAM_INVOCATION,
        MessageType.CANCEL_INVOCATION,
    }
)


def is_trackable(message: HubMessage) -> bool:
    return message.type in TRACKABLE_TYPES

PING = PingMessage()
