"""The client's lean WebSocket (hub.client.ws_transport) under HubClient against a real hub (TestHub on uvicorn, as
`python -m hub serve` runs it), and alone against websockets' own server for what the hub never sends
(fragmented messages, pings, oversized messages on a plain socket)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Close, Frame, Opcode
from websockets.protocol import Protocol, Side
from websockets.utils import accept_key

from hub.client.signalr import HubClient, HubError
from hub.client.ws_transport import WebSocketConnection, open_websocket
from hub.signalr.endpoint import HubEndpoint
from hub.signalr.options import HubOptions
from tests.support.inproc_hub import PATH, broadcast, running_hub
from tests.support.timing import eventually, scaled, wait_for


@contextlib.asynccontextmanager
async def hub(deflate: bool = False) -> AsyncIterator[tuple[str, HubEndpoint]]:
    async with running_hub(HubOptions(max_message_size=8 * 1024 * 1024), deflate=deflate) as (port, endpoint, _server):
        yield f"http://127.0.0.1:{port}{PATH}", endpoint


@pytest.mark.parametrize("msgpack", [False, True], ids=["json", "msgpack"])
def test_messages_larger_than_one_read_arrive_whole_and_in_order(msgpack: bool) -> None:
    async def main() -> None:
        async with hub() as (url, endpoint):
            got: list[Any] = []
            client = await HubClient.connect(url, msgpack=msgpack, handlers={"Big": lambda args: got.append(args[0])})
            try:
                assert client._ws is not None and client._ws.extensions == []  # the fast path
                await eventually(lambda: len(list(endpoint.manager.all_open())) == 1, 5, "1 open connection")
                sizes = [2_000_000, 10, 700_000, 1, 65_536, 1_000_000]  # < 4 MB even if the hub batches them all
                for n, size in enumerate(sizes):
                    broadcast(endpoint, "Big", {"n": n, "text": chr(ord("a") + n) * size})
                await eventually(lambda: len(got) == len(sizes), 10, "every large message")
                assert [g["n"] for g in got] == list(range(len(sizes)))
                assert [g["text"] for g in got] == [chr(ord("a") + n) * size for n, size in enumerate(sizes)]
                assert await client.invoke("Echo", "é" * 600_000) == "é" * 600_000  # a large send too
            finally:
                await client.close()

    asyncio.run(main())


def test_async_handlers_run_in_order_before_later_completions() -> None:
    async def main() -> None:
        async with hub() as (url, endpoint):
            seen: list[Any] = []

            async def slow(args: list[Any]) -> None:
                for _ in range(3):
                    await asyncio.sleep(0)
                seen.append(args[0])

            client = await HubClient.connect(url, handlers={"Tick": slow})
            client.on("Tick", lambda args: seen.append(-args[0]))  # a sync handler after an async one
            try:
                await eventually(lambda: len(list(endpoint.manager.all_open())) == 1, 5, "1 open connection")
                for n in range(1, 301):
                    broadcast(endpoint, "Tick", n)
                answer = await wait_for(client.invoke("Echo", "after"), 10)
                seen.append(answer)  # the completion is dispatched after every earlier event was handled
                assert seen == [x for n in range(1, 301) for x in (n, -n)] + ["after"]
            finally:
                await client.close()

    asyncio.run(main())


def test_server_close_ends_the_client_and_fails_what_waits() -> None:
    async def main() -> None:
        async with hub() as (url, endpoint):
            client = await HubClient.connect(url, msgpack=True)
            try:
                await eventually(lambda: len(list(endpoint.manager.all_open())) == 1, 5, "1 open connection")
                connection = next(iter(endpoint.manager.all_open()))
                # InvokeCaller waits for a client result this client never sends: the invoke stays pending.
                pending = asyncio.get_running_loop().create_task(client.invoke("InvokeCaller", "NoSuchHandler"))
                await eventually(lambda: bool(client._pending), 5, "the invoke to be sent")
                connection.close("bye", allow_reconnect=True)
                await wait_for(client.closed.wait(), 10)
                with pytest.raises(HubError, match="bye"):
                    await wait_for(pending, 5)
                assert client.close_error == "bye" and client.allow_reconnect
                assert client._ws is not None
                await wait_for(client._ws.wait_closed(), 10)
                assert client._ws.close_code == 1000
                with pytest.raises(HubError, match="closed"):
                    await client.send("Echo", 1)
                with pytest.raises(HubError, match="closed"):
                    await client.invoke("Echo", 1)
            finally:
                await client.close()

    asyncio.run(main())


@pytest.mark.parametrize("deflate", [False, True], ids=["plain", "deflate"])
def test_messages_read_together_with_the_close_are_all_delivered(deflate: bool) -> None:
    async def main() -> None:
        async with hub(deflate) as (url, endpoint):
            got: list[int] = []
            client = await HubClient.connect(url, handlers={"Tick": lambda args: got.append(args[0])})
            try:
                assert client._ws is not None and client._ws.extensions == (["permessage-deflate"] if deflate else [])
                await eventually(lambda: len(list(endpoint.manager.all_open())) == 1, 5, "1 open connection")
                connection = next(iter(endpoint.manager.all_open()))
                for n in range(100):
                    broadcast(endpoint, "Tick", n)
                connection.close("bye")  # no await in between: the last frames and the close arrive together
                await wait_for(client.closed.wait(), 10)
                assert got == list(range(100)) and client.close_error == "bye"
            finally:
                await client.close()

    asyncio.run(main())


def test_send_after_close_raises_hub_error() -> None:
    async def main() -> None:
        async with hub() as (url, _):
            client = await HubClient.connect(url)
            assert await client.invoke("Echo", "x") == "x"
            await client.close()
            assert client.closed.is_set()
            with pytest.raises(HubError):
                await client.send("Echo", 1)
            with pytest.raises(HubError):
                await client.invoke("Echo", 1)
            await client.close()  # twice is fine

    asyncio.run(main())


def test_a_message_over_the_client_limit_is_refused() -> None:
    async def main() -> None:
        async with hub() as (url, endpoint):
            client = await HubClient.connect(url, msgpack=True)
            try:
                await eventually(lambda: len(list(endpoint.manager.all_open())) == 1, 5, "1 open connection")
                pending = asyncio.get_running_loop().create_task(client.invoke("InvokeCaller", "NoSuchHandler"))
                await eventually(lambda: bool(client._pending), 5, "the invoke to be sent")
                broadcast(endpoint, "Big", b"\x00" * (5 * 1024 * 1024))  # the client takes up to 4 MB
                await wait_for(client.closed.wait(), 10)
                with pytest.raises(HubError):
                    await wait_for(pending, 5)
                assert client._ws is not None
                await wait_for(client._ws.wait_closed(), 10)
                assert client._ws.sent_close_code == 1009
            finally:
                await client.close()

    asyncio.run(main())


# --- the transport alone, against websockets' server -------------------------------------------------------------

Handler = Callable[[ServerConnection], Awaitable[None]]


@contextlib.asynccontextmanager
async def ws_server(handler: Handler, compression: str | None = None) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, compression=compression, ping_interval=None,
                     max_size=16 * 1024 * 1024) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[bytes, bool]] = []
        self.closed = asyncio.Event()

    def __call__(self, payload: bytes, text: bool) -> None:
        self.messages.append((payload, text))


@pytest.mark.parametrize("compression", [None, "deflate"], ids=["plain", "deflate"])
def test_messages_sent_just_before_the_server_closes_arrive(compression: str | None) -> None:
    async def handler(ws: ServerConnection) -> None:
        for n in range(50):
            await ws.send(f"m{n}")
        await ws.close(1001, "going away")

    async def main() -> None:
        async with ws_server(handler, compression) as url:
            inbox = Inbox()
            conn = await open_websocket(url, inbox, on_close=inbox.closed.set)
            await wait_for(inbox.closed.wait(), 10)
            assert inbox.messages == [(f"m{n}".encode(), True) for n in range(50)]
            assert (conn.close_code, conn.close_reason) == (1001, "going away")
            await conn.close()

    asyncio.run(main())


@pytest.mark.parametrize("compression", [None, "deflate"], ids=["plain", "deflate"])
def test_fragmented_messages_and_pings(compression: str | None) -> None:
    big = bytes(range(256)) * 8192  # 2 MB in 5 fragments
    text = "héllo wörld " * 1000
    server_side: list[Any] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send([big[i:i + 500_000] for i in range(0, len(big), 500_000)])
        await ws.send(iter([text[:1], text[1:5000], text[5000:]]))
        await ws.send("whole")
        pong = await ws.ping(b"from server")
        await wait_for(pong, 5)
        server_side.append("pong")
        async for message in ws:  # echo
            await ws.send(message)

    async def main() -> None:
        async with ws_server(handler, compression) as url:
            inbox = Inbox()
            conn = await open_websocket(url, inbox, on_close=inbox.closed.set, max_size=4 * 1024 * 1024)
            try:
                assert conn.extensions == ([] if compression is None else ["permessage-deflate"])
                await eventually(lambda: server_side == ["pong"], 10, "the server's ping answered")
                assert inbox.messages == [(big, False), (text.encode(), True), (b"whole", True)]
                await wait_for(conn.ping(b"from client"), 5)
                await conn.send(b"\x01\x02")
                await conn.send("texte")
                await eventually(lambda: len(inbox.messages) == 5, 5, "the echoes")
                assert inbox.messages[3:] == [(b"\x01\x02", False), (b"texte", True)]
            finally:
                await conn.close()
            assert inbox.closed.is_set() and conn.close_code == 1000
            with pytest.raises(Exception, match="sent 1000"):
                await conn.send("too late")

    asyncio.run(main())


def test_a_message_over_max_size_fails_the_connection_with_1009() -> None:
    server_close: list[int | None] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"ok")
        await ws.send(b"x" * 2_000_000)
        await ws.wait_closed()
        server_close.append(ws.close_code)

    async def main() -> None:
        async with ws_server(handler) as url:
            inbox = Inbox()
            conn: WebSocketConnection = await open_websocket(url, inbox, on_close=inbox.closed.set, max_size=1_000_000)
            await wait_for(inbox.closed.wait(), 10)
            await eventually(lambda: server_close == [1009], 10, "the server to see 1009")
            assert inbox.messages == [(b"ok", False)]
            assert conn.sent_close_code == 1009
            await conn.close()

    asyncio.run(main())


def test_open_timeout_and_refused_upgrade() -> None:
    async def main() -> None:
        writers: list[asyncio.StreamWriter] = []
        silent = await asyncio.start_server(lambda r, w: writers.append(w), "127.0.0.1", 0)  # never answers
        port = silent.sockets[0].getsockname()[1]
        try:
            with pytest.raises(TimeoutError):
                await open_websocket(f"ws://127.0.0.1:{port}/", Inbox(), open_timeout=0.3)
        finally:
            for writer in writers:
                writer.close()
            silent.close()
            await silent.wait_closed()
        async with hub() as (url, _):
            with pytest.raises(Exception, match="HTTP 4"):  # the hub without negotiate refuses the upgrade
                await open_websocket(url.replace("http://", "ws://") + "?id=unknown", Inbox())

    asyncio.run(main())


# --- frames websockets' server never sends: a raw server writing exact bytes ------------------------------------


def server_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, masked: bool = False) -> bytes:
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    length = len(payload)
    if length < 126:
        size = bytes([length])
    elif length < 65536:
        size = bytes([126]) + length.to_bytes(2, "big")
    else:
        size = bytes([127]) + length.to_bytes(8, "big")
    if masked:
        return head + bytes([size[0] | 0x80]) + size[1:] + b"\0\0\0\0" + payload  # a zero mask: payload unchanged
    return head + size + payload


@contextlib.asynccontextmanager
async def raw_server(script: bytes, received: list[Frame], piece: int = 0) -> AsyncIterator[str]:
    """Answers the upgrade and writes `script` in the same write (or after it in `piece`-byte writes, yielding to
    the loop between them so the client reads them apart); records the client's frames until its Close, then ends
    the TCP connection (as a server does after the close handshake)."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        request = await reader.readuntil(b"\r\n\r\n")
        key = re.search(rb"sec-websocket-key: *(\S+)", request, re.IGNORECASE)
        assert key is not None
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept_key(key.group(1).decode()).encode() + b"\r\n\r\n"
                     + (b"" if piece else script))
        for start in range(0, len(script), piece) if piece else ():
            writer.write(script[start:start + piece])
            await writer.drain()
            await asyncio.sleep(0)
        parser = Protocol(Side.SERVER)
        while data := await reader.read(65536):
            parser.receive_data(data)
            received.extend(event for event in parser.events_received() if isinstance(event, Frame))
            if any(frame.opcode is Opcode.CLOSE for frame in received):
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("piece", [0, 5, 4096], ids=["with-the-upgrade", "5-byte-writes", "4k-writes"])
def test_fragments_with_a_ping_between_them_split_anywhere(piece: int) -> None:
    script = (server_frame(2, b"ab", fin=False) + server_frame(9, b"p") + server_frame(0, b"cd", fin=False)
              + server_frame(0, b"ef") + server_frame(1, b"\xc3", fin=False) + server_frame(0, b"\xa9")
              + server_frame(2, b"z" * (700 if piece == 5 else 70_000)) + server_frame(2, b"y" * 300)
              + server_frame(8, Close(1000, "done").serialize()))
    received: list[Frame] = []

    async def main() -> None:
        async with raw_server(script, received, piece) as url:
            inbox = Inbox()
            conn = await open_websocket(url, inbox, on_close=inbox.closed.set)
            await wait_for(inbox.closed.wait(), 10)
            assert inbox.messages == [(b"abcdef", False), ("é".encode(), True),
                                      (b"z" * (700 if piece == 5 else 70_000), False), (b"y" * 300, False)]
            assert [(f.opcode, bytes(f.data)) for f in received] == [
                (Opcode.PONG, b"p"), (Opcode.CLOSE, Close(1000, "done").serialize())]  # pong, then the echo
            assert conn.close_code == 1000 and conn.close_reason == "done"
            await conn.close()

    asyncio.run(main())


@pytest.mark.parametrize(("script", "code"), [
    (server_frame(2, b"x", masked=True), 1002),
    (server_frame(2, b"x", rsv=0x40), 1002),  # no extension negotiated
    (server_frame(0, b"x"), 1002),  # a continuation with nothing to continue
    (server_frame(2, b"a", fin=False) + server_frame(2, b"b"), 1002),  # a new message inside a fragmented one
    (server_frame(9, b"p", fin=False), 1002),  # a fragmented control frame
    (server_frame(3, b"x"), 1002),  # a reserved opcode
    (server_frame(1, b"\xff\xfe"), 1007),  # text that is not UTF-8
    (server_frame(2, b"a" * 200, fin=False) + server_frame(0, b"b" * 900), 1009),  # over max_size in fragments
], ids=["masked", "rsv", "continuation", "interleaved", "control-fragmented", "opcode", "utf8", "too-big"])
def test_a_protocol_violation_fails_the_connection(script: bytes, code: int) -> None:
    received: list[Frame] = []

    async def main() -> None:
        async with raw_server(server_frame(2, b"first") + script + server_frame(2, b"never"), received) as url:
            inbox = Inbox()
            conn = await open_websocket(url, inbox, on_close=inbox.closed.set, max_size=1000)
            await wait_for(inbox.closed.wait(), 10)
            assert inbox.messages == [(b"first", False)]
            assert conn.sent_close_code == code
            assert [f.opcode for f in received] == [Opcode.CLOSE] and Close.parse(received[0].data).code == code
            await conn.close()

    asyncio.run(main())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command for a throwaway certificate")
def test_wss_verifies_the_server_with_the_given_context(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=scaled(30))
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)

    async def handler(ws: ServerConnection) -> None:
        await ws.send(b"x" * 300_000)
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with serve(handler, "127.0.0.1", 0, ssl=server_tls, ping_interval=None) as server:
            url = f"wss://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/"
            inbox = Inbox()
            conn = await open_websocket(url, inbox, on_close=inbox.closed.set,
                                        ssl_context=ssl.create_default_context(cafile=cert))
            try:
                await conn.send("echo")
                await eventually(lambda: len(inbox.messages) == 2, 5, "both messages over TLS")
                assert inbox.messages == [(b"x" * 300_000, False), (b"echo", True)]
            finally:
                await conn.close()
            assert inbox.closed.is_set() and conn.close_code == 1000
            with pytest.raises(ssl.SSLCertVerificationError):  # the default context does not know this certificate
                await open_websocket(url, Inbox())

    asyncio.run(main())
