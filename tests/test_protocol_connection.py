"""Handshake and negotiate rules, with the exact texts the official clients show."""

from __future__ import annotations

import orjson
import pytest

from protocol import HandshakeError, JsonHubProtocol, MessagePackHubProtocol, PingMessage, ServerConnection, TransferFormat
from protocol.connection import HandshakeCompleted
from protocol.negotiate import NegotiateResponse, NegotiateVersionError, select_version
from protocol.stateful import InboundSequence, ReplayBuffer

PROTOCOLS = {"json": JsonHubProtocol(), "messagepack": MessagePackHubProtocol()}


def test_handshake_then_messages_in_the_same_chunk() -> None:
    conn = ServerConnection(PROTOCOLS, TransferFormat.BINARY)
    events = conn.receive_data(b'{"protocol":"messagepack","version":1}\x1e\x02\x91\x06')
    assert isinstance(events[0], HandshakeCompleted) and events[0].protocol.name == "messagepack"
    assert events[1:] == [PingMessage()]


@pytest.mark.parametrize(
    ("record", "transport", "text"),
    [
        (b'{"protocol":"xml","version":1}', TransferFormat.TEXT, "The protocol 'xml' is not supported."),
        (
            b'{"protocol":"json","version":3}',
            TransferFormat.TEXT,
            "The server does not support version 3 of the 'json' protocol.",
        ),
        (
            b'{"protocol":"messagepack","version":1}',
            TransferFormat.TEXT,
            "Cannot use the 'messagepack' protocol on the current transport. The transport does not support 'Binary' transfer format.",
        ),
    ],
)
def test_handshake_errors(record: bytes, transport: TransferFormat, text: str) -> None:
    conn = ServerConnection(PROTOCOLS, transport)
    with pytest.raises(HandshakeError) as info:
        conn.receive_data(record + b"\x1e")
    assert orjson.loads(info.value.response[:-1]) == {"error": text}


def test_oversized_handshake_is_canceled() -> None:
    conn = ServerConnection(PROTOCOLS, TransferFormat.TEXT, max_message_size=64)
    with pytest.raises(HandshakeError, match="Handshake was canceled."):
        conn.receive_data(b"{" * 65)


def test_stateful_reconnect_needs_version_two() -> None:
    conn = ServerConnection(PROTOCOLS, TransferFormat.TEXT, stateful_reconnect_negotiated=True)
    conn.receive_data(b'{"protocol":"json","version":1}\x1e')
    assert not conn.stateful_reconnect


@pytest.mark.parametrize(("raw", "expected"), [(None, 0), ("1", 1), ("5", 1), ("0", 0)])
def test_negotiate_version_selection(raw: str | None, expected: int) -> None:
    assert select_version(raw) == expected


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("abc", "The client requested a non-integer protocol version."),
        ("-1", "The client requested version '-1', but the server does not support this version."),
    ],
)
def test_negotiate_version_errors(raw: str, text: str) -> None:
    with pytest.raises(NegotiateVersionError, match=text):
        select_version(raw)


def test_negotiate_response_shape() -> None:
    v1 = orjson.loads(NegotiateResponse("id", "tok", 1).to_json())
    assert list(v1) == ["negotiateVersion", "connectionId", "connectionToken", "availableTransports"]
    v0 = orjson.loads(NegotiateResponse("id", "tok", 0, use_stateful_reconnect=True).to_json())
    assert "connectionToken" not in v0 and v0["useStatefulReconnect"] is True


def test_replay_buffer_and_inbound_sequence() -> None:
    buffer = ReplayBuffer(limit_bytes=10)
    assert [buffer.add(b"abcd"), buffer.add(b"efgh"), buffer.add(b"ijkl")] == [1, 2, 3]
    assert buffer.full
    buffer.ack(2)
    assert buffer.first_unacked() == 3 and buffer.unacked() == [b"ijkl"]
    inbound = InboundSequence()
    assert [inbound.accept(), inbound.accept()] == [True, True]
    inbound.reset(2)
    assert [inbound.accept(), inbound.accept()] == [False, True]
    assert inbound.ack_due() == 3 and inbound.ack_due() is None
