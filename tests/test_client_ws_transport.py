"""The client's lean WebSocket (hub.client.ws_transport) under HubClient against a real hub (TestHub on uvicorn, as
`python -m hub serve` runs it), and alone against websockets' own server for what the hub never sends
(fragmented messages, pings, oversized messages on a plain socket)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.server import ServerConnection, serve

from hub.client.signalr import HubClient, HubError
from hub.client.ws_transport import WebSocketConnection, open_websocket
from hub.conformance import TestHub
from hub.signalr.endpoint import HubEndpoint, HubRoute
from hub.signalr.options import HubOptions
from hub.signalr.outbound import OutgoingMessage
from protocol import InvocationMessage
from tests.support.ports import free_port
from tests.support.timing import eventually, scaled, wait_for


@contextlib.asynccontextmanager
async def hub() -> AsyncIterator[tuple[str, HubEndpoint]]:
    endpoint = HubEndpoint(TestHub, HubOptions(max_message_size=8 * 1024 * 1024))
    app = Starlette(routes=[HubRoute("/h", endpoint)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           ws_per_message_deflate=False, ws_max_size=16 * 1024 * 1024))
    task = asyncio.get_running_loop().create_task(server.serve())
    await eventually(lambda: server.started, 10, "uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}/h", endpoint
    finally:
        server.should_exit = True
        await wait_for(task, scaled(15))


def broadcast(endpoint: HubEndpoint, target: str, value: Any) -> None:
    message = OutgoingMessage(InvocationMessage(target, [value]))
    for connection in endpoint.manager.all_open():
        connection.send_encoded(message)


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
