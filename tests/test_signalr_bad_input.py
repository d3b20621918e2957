"""Bad input against a real `serve --conformance` (detailed errors on, like Microsoft's test server): each gets the
protocol's own answer (handshake error, Close text, Completion error, HTTP status and text), and a connection that
was open before, plus a new one, keep working on the same server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from protocol import (
    CloseMessage,
    CompletionMessage,
    InvocationMessage,
    JsonHubProtocol,
    MessagePackHubProtocol,
    ProtocolError,
)
from protocol.messages import HubMessage
from tests.support.serve import running_hub
from tests.support.timing import wait_for

RS = "\x1e"
JSON_HANDSHAKE = '{"protocol":"json","version":1}' + RS
MSGPACK_HANDSHAKE = '{"protocol":"messagepack","version":1}' + RS
JSON = JsonHubProtocol()
MSGPACK = MessagePackHubProtocol()
CLOSED = "Connection closed with an error. InvalidDataException: "
TOO_BIG = "The maximum message size of 32768B was exceeded. The message size can be configured in AddHubOptions."


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with running_hub("--conformance", "--drain-grace", "1") as url:
        yield url


def ws_url(base: str, path: str = "/testhub") -> str:
    return base.replace("http://", "ws://") + path


async def open_hub(base: str, handshake: str = JSON_HANDSHAKE) -> ClientConnection:
    ws = await connect(ws_url(base))
    await ws.send(handshake)
    reply = await wait_for(ws.recv(), 10)
    assert (reply if isinstance(reply, str) else reply.decode()) == "{}" + RS
    return ws


async def recv_messages(ws: ClientConnection, protocol: JsonHubProtocol | MessagePackHubProtocol) -> list[HubMessage]:
    data = await wait_for(ws.recv(), 10)
    return protocol.decode_all(data.encode() if isinstance(data, str) else data)


async def echo_works(ws: ClientConnection, text: str = "still here") -> None:
    await ws.send(JSON.encode(InvocationMessage("Echo", [text], "w")).decode())
    assert await recv_messages(ws, JSON) == [CompletionMessage.with_result("w", text)]


async def closed_after(ws: ClientConnection) -> None:
    """The server ends the socket (clean close after its Close message or handshake error)."""
    with pytest.raises(ConnectionClosed):
        await wait_for(ws.recv(), 10)
    assert ws.close_code == 1000


def scenario(base: str, bad: Callable[[str], Awaitable[None]]) -> None:
    """Run `bad` while a witness connection is open; both the witness and a fresh connection work after it."""

    async def main() -> None:
        witness = await open_hub(base)
        try:
            await echo_works(witness, "before")
            await bad(base)
            await echo_works(witness, "after")
            fresh = await open_hub(base)
            try:
                await echo_works(fresh, "fresh")
            finally:
                await fresh.close()
        finally:
            await witness.close()

    asyncio.run(main())


# --- hub messages that break the protocol: Close with the reason, allowReconnect true (.NET's default) ------------
@pytest.mark.parametrize(
    ("frame", "text"),
    [
        pytest.param("garbage" + RS, "Error reading JSON.", id="malformed-json"),
        pytest.param('{"type":1,"target":"Echo","arguments":["x"]' + RS, "Error reading JSON.", id="truncated-json"),
        pytest.param('{"arguments":[]}' + RS, "Missing required property 'type'.", id="json-without-type"),
        pytest.param('{"type":42}' + RS, "Unknown message type '42'.", id="json-unknown-type"),
        pytest.param('{"type":1,"target":"Echo","arguments":["' + "x" * 33_000 + '"]}' + RS, TOO_BIG, id="json-oversized"),
        pytest.param("x" * 33_000, TOO_BIG, id="json-oversized-without-separator"),
    ],
)
def test_malformed_json_frames_close_with_the_reason(base: str, frame: str, text: str) -> None:
    async def bad(url: str) -> None:
        ws = await open_hub(url)
        await ws.send(frame)
        assert await recv_messages(ws, JSON) == [CloseMessage(CLOSED + text, True)]
        await closed_after(ws)

    scenario(base, bad)


@pytest.mark.parametrize(
    ("frame", "text"),
    [
        pytest.param(bytes.fromhex("01 c1"), "Error reading MessagePack: FormatError.", id="malformed-msgpack"),
        pytest.param(bytes.fromhex("02 91 2a"), "Unknown message type '42'.", id="msgpack-unknown-type"),
        pytest.param(bytes.fromhex("80 80 03") + bytes(10), TOO_BIG, id="msgpack-oversized-prefix"),
    ],
)
def test_malformed_messagepack_frames_close_with_the_reason(base: str, frame: bytes, text: str) -> None:
    async def bad(url: str) -> None:
        ws = await open_hub(url, MSGPACK_HANDSHAKE)
        await ws.send(frame)
        assert await recv_messages(ws, MSGPACK) == [CloseMessage(CLOSED + text, True)]
        await closed_after(ws)

    scenario(base, bad)


# --- bad handshakes: the handshake error record, then a clean close ---------------------------------------------
@pytest.mark.parametrize(
    ("handshake", "text"),
    [
        pytest.param('{"protocol":"xml","version":1}' + RS, "The protocol 'xml' is not supported.", id="unknown-protocol"),
        pytest.param('{"protocol":"json","version":3}' + RS, "The server does not support version 3 of the 'json' protocol.",
                     id="unsupported-version"),
        pytest.param("not json" + RS, "Handshake request is not valid JSON.", id="not-json"),
        pytest.param('{"protocol":"json"}' + RS, "Missing required property 'version'.", id="no-version"),
        pytest.param("x" * 33_000, "Handshake was canceled.", id="oversized-handshake"),
    ],
)
def test_bad_handshakes_get_the_handshake_error(base: str, handshake: str, text: str) -> None:
    async def bad(url: str) -> None:
        ws = await connect(ws_url(url))
        await ws.send(handshake)
        reply = await wait_for(ws.recv(), 10)
        assert orjson.loads(str(reply).removesuffix(RS)) == {"error": text}
        await closed_after(ws)

    scenario(base, bad)


# --- well-formed messages the hub cannot honour: a Completion error, the connection stays open ------------------
def test_unknown_method_wrong_argument_counts_and_a_stray_completion(base: str) -> None:
    async def bad(url: str) -> None:
        ws = await open_hub(url)
        try:
            calls = [
                InvocationMessage("NoSuchMethod", []),  # non-blocking: nothing comes back, not even the error
                InvocationMessage("NoSuchMethod", [1], "1"),
                InvocationMessage("Echo", [], "2"),
                InvocationMessage("Echo", ["a", "b"], "3"),
                InvocationMessage("GetCallerConnectionId", [1], "4"),
                InvocationMessage("Echo", ["a", "b"]),  # non-blocking binding failure: nothing either
            ]
            await ws.send("".join(JSON.encode(c).decode() for c in calls))
            # A Completion for an id the server never used is ignored (.NET logs it).
            await ws.send(JSON.encode(CompletionMessage.with_result("never-issued", 1)).decode())
            await ws.send(JSON.encode(CompletionMessage.with_error("never-issued-either", "x")).decode())
            await ws.send(JSON.encode(InvocationMessage("Echo", ["last"], "5")).decode())
            got: list[HubMessage] = []
            while len(got) < 5:
                got += await recv_messages(ws, JSON)
            binding = "Failed to invoke '{}' due to an error on the server. InvalidDataException: " \
                      "Invocation provides {} argument(s) but target expects {}."
            assert got == [
                CompletionMessage.with_error("1", "Unknown hub method 'NoSuchMethod'"),
                CompletionMessage.with_error("2", binding.format("Echo", 0, 1)),
                CompletionMessage.with_error("3", binding.format("Echo", 2, 1)),
                CompletionMessage.with_error("4", binding.format("GetCallerConnectionId", 1, 0)),
                CompletionMessage.with_result("5", "last"),
            ]
            await echo_works(ws)
        finally:
            await ws.close()

    scenario(base, bad)


def test_a_messagepack_completion_for_an_unknown_id_is_ignored(base: str) -> None:
    async def bad(url: str) -> None:
        ws = await open_hub(url, MSGPACK_HANDSHAKE)
        try:
            await ws.send(MSGPACK.encode(CompletionMessage.with_result("nope", None)) +
                          MSGPACK.encode(InvocationMessage("Echo", ["ok"], "1")))
            assert await recv_messages(ws, MSGPACK) == [CompletionMessage.with_result("1", "ok")]
        finally:
            await ws.close()

    scenario(base, bad)


# --- unknown connection ids on every transport ------------------------------------------------------------------
def test_unknown_connection_ids_get_404_on_sse_long_polling_post_delete_and_websockets(base: str) -> None:
    async def bad(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            sse = await client.get("/testhub?id=no-such-id", headers={"Accept": "text/event-stream"})
            poll = await client.get("/testhub?id=no-such-id")
            post = await client.post("/testhub?id=no-such-id", content=b'{"type":6}\x1e')
            delete = await client.delete("/testhub?id=no-such-id")
            for response in (sse, poll, post, delete):
                assert (response.status_code, response.text) == (404, "No Connection with that ID")
            for missing in (await client.get("/testhub", headers={"Accept": "text/event-stream"}),
                            await client.get("/testhub"), await client.post("/testhub", content=b"x")):
                assert (missing.status_code, missing.text) == (400, "Connection ID required")
        with pytest.raises(Exception) as refused:
            await connect(ws_url(url, "/testhub?id=no-such-id"))
        assert "404" in str(refused.value)

    scenario(base, bad)


def test_garbage_over_long_polling_closes_that_connection_only(base: str) -> None:
    async def bad(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            token = (await client.post("/testhub/negotiate?negotiateVersion=1")).json()["connectionToken"]
            assert (await client.get(f"/testhub?id={token}")).status_code == 200  # the first poll returns at once
            assert (await client.post(f"/testhub?id={token}", content=JSON_HANDSHAKE.encode())).status_code == 200
            assert (await client.get(f"/testhub?id={token}")).content == b"{}" + RS.encode()
            assert (await client.post(f"/testhub?id={token}", content=b"{not json" + RS.encode())).status_code == 200
            close = await client.get(f"/testhub?id={token}")
            assert JSON.decode_all(close.content) == [CloseMessage(CLOSED + "Error reading JSON.", True)]
            ended = await client.get(f"/testhub?id={token}")
            assert ended.status_code in (204, 404)  # the poll after the Close: ended (204) or already gone (404)

    scenario(base, bad)


def test_a_send_before_the_first_poll_is_kept_until_the_poll_attaches(base: str) -> None:
    """.NET buffers a POST that arrives before the receive leg; signalrcore's long polling relies on it."""

    async def early(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            token = (await client.post("/testhub/negotiate?negotiateVersion=1")).json()["connectionToken"]
            handshake_and_call = JSON_HANDSHAKE + JSON.encode(InvocationMessage("Echo", ["early"], "1")).decode()
            assert (await client.post(f"/testhub?id={token}", content=handshake_and_call.encode())).status_code == 200
            assert (await client.get(f"/testhub?id={token}")).content == b""  # first poll: at once, empty
            body = b""
            while not body.endswith(b'"result":"early"}' + RS.encode()):
                response = await client.get(f"/testhub?id={token}")
                assert response.status_code == 200
                body += response.content
            assert body.startswith(b"{}" + RS.encode())
            assert (await client.delete(f"/testhub?id={token}")).status_code == 202

    scenario(base, early)


# --- both codecs on random input: decoded or the documented protocol error, nothing else ------------------------
frames = st.builds(
    lambda body: bytes([len(body)]) + body if len(body) < 128 else body,
    st.binary(max_size=100),
)
msgpack_arrays = st.lists(
    st.one_of(st.integers(-2, 12), st.none(), st.text(max_size=5), st.binary(max_size=5), st.booleans(),
              st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
              st.lists(st.one_of(st.text(max_size=3), st.integers(-(2**63), 2**63 - 1)), max_size=3)),
    max_size=7,
)
json_objects = st.dictionaries(
    st.sampled_from(["type", "invocationId", "target", "arguments", "item", "result", "error", "streamIds",
                     "headers", "sequenceId", "allowReconnect"]),
    st.one_of(st.integers(-1, 12), st.none(), st.text(max_size=4), st.booleans(), st.lists(st.text(max_size=3), max_size=2),
              st.dictionaries(st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers(-(2**53), 2**53)), max_size=2)),
    max_size=6,
)


def _decoded_or_protocol_error(protocol: JsonHubProtocol | MessagePackHubProtocol, data: bytes) -> None:
    try:
        messages = protocol.reader(1024).feed(data)
    except ProtocolError as exc:
        assert exc.close_text.startswith(CLOSED)
        return
    for message in messages:  # whatever decodes re-encodes
        protocol.encode(message)


@settings(max_examples=300, deadline=None)
@given(frames)
def test_random_length_prefixed_bytes_in_the_messagepack_reader(data: bytes) -> None:
    _decoded_or_protocol_error(MSGPACK, data)


@settings(max_examples=300, deadline=None)
@given(msgpack_arrays)
def test_random_messagepack_arrays_decode_or_raise_the_protocol_error(parts: list[Any]) -> None:
    import msgpack

    body = msgpack.packb(parts, use_bin_type=True)
    _decoded_or_protocol_error(MSGPACK, bytes([len(body)]) + body if len(body) < 128 else body)


@settings(max_examples=300, deadline=None)
@given(json_objects)
def test_random_json_objects_decode_or_raise_the_protocol_error(obj: dict[str, Any]) -> None:
    _decoded_or_protocol_error(JSON, orjson.dumps(obj) + RS.encode())
