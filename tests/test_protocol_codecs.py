"""Both hub protocol codecs against vector tables, in both directions, fed whole and byte by byte."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import (
    AckMessage,
    CancelInvocationMessage,
    CloseMessage,
    CompletionMessage,
    HubMessage,
    InvocationMessage,
    JsonHubProtocol,
    MessagePackHubProtocol,
    MessageTooLarge,
    PingMessage,
    ProtocolError,
    SequenceMessage,
    StreamInvocationMessage,
    StreamItemMessage,
)

JSON = JsonHubProtocol()
MSGPACK = MessagePackHubProtocol()

JSON_CASES: list[tuple[HubMessage, bytes]] = [
    (
        InvocationMessage("Echo", ["héllo"], "0"),
        '{"type":1,"invocationId":"0","target":"Echo","arguments":["héllo"]}\x1e'.encode(),
    ),
    (InvocationMessage("Send", [1, None]), b'{"type":1,"target":"Send","arguments":[1,null]}\x1e'),
    (
        InvocationMessage("Up", [], "1", ("2",)),
        b'{"type":1,"invocationId":"1","target":"Up","arguments":[],"streamIds":["2"]}\x1e',
    ),
    (StreamItemMessage("1", None), b'{"type":2,"invocationId":"1","item":null}\x1e'),
    (CompletionMessage.with_result("1", None), b'{"type":3,"invocationId":"1","result":null}\x1e'),
    (CompletionMessage("1"), b'{"type":3,"invocationId":"1"}\x1e'),
    (CompletionMessage.with_error("1", "boom"), b'{"type":3,"invocationId":"1","error":"boom"}\x1e'),
    (StreamInvocationMessage("4", "Stream", []), b'{"type":4,"invocationId":"4","target":"Stream","arguments":[]}\x1e'),
    (CancelInvocationMessage("4"), b'{"type":5,"invocationId":"4"}\x1e'),
    (PingMessage(), b'{"type":6}\x1e'),
    (CloseMessage(), b'{"type":7}\x1e'),
    (CloseMessage("bye", True), b'{"type":7,"error":"bye","allowReconnect":true}\x1e'),
    (AckMessage(5), b'{"type":8,"sequenceId":5}\x1e'),
    (SequenceMessage(1), b'{"type":9,"sequenceId":1}\x1e'),
]

MSGPACK_CASES: list[tuple[HubMessage, bytes]] = [
    (InvocationMessage("Echo", ["x"], "0"), bytes.fromhex("0e 96 01 80 a1 30 a4 45 63 68 6f 91 a1 78 90")),
    (InvocationMessage("Up", [], "1", ("2",)), bytes.fromhex("0c 96 01 80 a1 31 a2 55 70 90 91 a1 32")),
    (StreamItemMessage("1", b"\x00\x01"), bytes.fromhex("09 94 02 80 a1 31 c4 02 00 01")),
    (CompletionMessage.with_result("1", None), bytes.fromhex("07 95 03 80 a1 31 03 c0")),
    (CompletionMessage("1"), bytes.fromhex("06 94 03 80 a1 31 02")),
    (CompletionMessage.with_error("1", "e"), bytes.fromhex("08 95 03 80 a1 31 01 a1 65")),
    (CancelInvocationMessage("4"), bytes.fromhex("05 93 05 80 a1 34")),
    (PingMessage(), bytes.fromhex("02 91 06")),
    (CloseMessage(None, True), bytes.fromhex("04 93 07 c0 c3")),
    (AckMessage(300), bytes.fromhex("05 92 08 cd 01 2c")),
    (SequenceMessage(1), bytes.fromhex("03 92 09 01")),
]


def feed_bytewise(protocol: JsonHubProtocol | MessagePackHubProtocol, data: bytes) -> list[HubMessage]:
    reader = protocol.reader()
    out: list[HubMessage] = []
    for i in range(len(data)):
        out.extend(reader.feed(data[i : i + 1]))
    assert reader.buffered == 0
    return out


@pytest.mark.parametrize(("message", "wire"), JSON_CASES)
def test_json_vectors(message: HubMessage, wire: bytes) -> None:
    assert JSON.encode(message) == wire
    assert JSON.decode_all(wire) == [message]
    assert feed_bytewise(JSON, wire + wire) == [message, message]


@pytest.mark.parametrize(("message", "wire"), MSGPACK_CASES)
def test_msgpack_vectors(message: HubMessage, wire: bytes) -> None:
    assert MSGPACK.encode(message) == wire
    assert MSGPACK.decode_all(wire) == [message]
    assert feed_bytewise(MSGPACK, wire + wire) == [message, message]


def test_msgpack_accepts_five_and_six_element_invocations_and_close_without_flag() -> None:
    assert MSGPACK.decode_all(bytes.fromhex("03 92 07 c0")) == [CloseMessage()]
    six = bytes.fromhex("0e 96 01 80 a1 30 a4 45 63 68 6f 91 a1 78 90")
    assert MSGPACK.decode_all(six) == [InvocationMessage("Echo", ["x"], "0")]


def test_json_bytes_are_base64_and_datetimes_are_utc_z() -> None:
    wire = JSON.encode(CompletionMessage.with_result("1", {"b": b"\x01\x02\x03", "t": datetime(2000, 1, 1, tzinfo=UTC)}))
    assert b'"b":"AQID"' in wire and b'"t":"2000-01-01T00:00:00Z"' in wire


def test_msgpack_varint_prefix_of_large_message() -> None:
    wire = MSGPACK.encode(StreamItemMessage("1", b"\x00" * 5240))
    assert wire[:2] == bytes([0x80 | (5248 & 0x7F), 5248 >> 7])
    assert MSGPACK.decode_all(wire, max_message_size=10_000) == [StreamItemMessage("1", b"\x00" * 5240)]


@pytest.mark.parametrize(
    "wire",
    [
        b"not json\x1e",
        b"[1,2]\x1e",
        b'{"type":"1"}\x1e',
        b'{"type":42}\x1e',
        b'{"type":1,"arguments":[]}\x1e',
        b'{"type":2,"invocationId":"1"}\x1e',
        b'{"type":3,"invocationId":"1","result":1,"error":"x"}\x1e',
        b'{"type":8}\x1e',
        b'{"type":1,"target":"x","arguments":{}}\x1e',
    ],
)
def test_json_rejects_malformed_records(wire: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        JSON.decode_all(wire)
    assert info.value.close_text.startswith("Connection closed with an error.")


@pytest.mark.parametrize(
    "wire",
    [
        bytes.fromhex("01 c1"),
        bytes.fromhex("02 91 2a"),
        bytes.fromhex("02 91 a1"),
        bytes.fromhex("03 92 01 80"),
        bytes.fromhex("05 94 03 80 a1 31 07"),
        bytes.fromhex("ff ff ff ff ff ff"),
    ],
)
def test_msgpack_rejects_malformed_frames(wire: bytes) -> None:
    with pytest.raises(ProtocolError):
        MSGPACK.decode_all(wire)


def test_oversized_messages_are_refused_before_they_are_buffered() -> None:
    with pytest.raises(MessageTooLarge):
        JSON.reader(100).feed(b"x" * 101)
    with pytest.raises(MessageTooLarge):
        MSGPACK.reader(100).feed(bytes.fromhex("e5 01"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    for protocol in (JSON, MSGPACK):
        reader = protocol.reader(1024)
        try:
            reader.feed(data)
        except ProtocolError:
            pass


payloads: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=10), st.lists(payloads, max_size=4), st.none() | st.text(min_size=1, max_size=5))
def test_invocations_round_trip_in_both_codecs(target: str, arguments: list[Any], invocation_id: str | None) -> None:
    message = InvocationMessage(target, arguments, invocation_id)
    for protocol in (JSON, MSGPACK):
        assert protocol.decode_all(protocol.encode(message), max_message_size=1 << 20) == [message]
