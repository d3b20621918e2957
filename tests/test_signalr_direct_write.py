"""Synchronous WebSocket writes (hub.signalr.transports.direct) under a real uvicorn without permessage-deflate,
as `python -m hub serve` runs: fan-out arrives whole and in order on both protocols, a client that stops reading
falls back to the bounded queue (audio dropped oldest-first) without holding the others, and Close still ends
the connection."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import connect

from hub.client.signalr import HubClient
from hub.signalr.endpoint import HubEndpoint
from hub.signalr.transports import direct
from tests.support.inproc_hub import PATH, broadcast, running_hub
from tests.support.timing import eventually, wait_for


@contextlib.asynccontextmanager
async def serve(deflate: bool = False) -> AsyncIterator[tuple[str, HubEndpoint]]:
    async with running_hub(deflate=deflate) as (port, endpoint, _server):
        yield f"http://127.0.0.1:{port}{PATH}", endpoint


def test_fan_out_is_written_directly_whole_and_in_order() -> None:
    async def main() -> None:
        async with serve() as (url, endpoint):
            got: list[list[Any]] = [[] for _ in range(4)]
            clients = [await HubClient.connect(url, msgpack=i % 2 == 1,
                                               handlers={"Tick": lambda args, i=i: got[i].append(args[0])})
                       for i in range(4)]
            try:
                await eventually(lambda: len(endpoint.manager.all_open()) == 4, 5, "4 open connections")
                before = direct.flusher().writes
                for n in range(300):
                    broadcast(endpoint, "Tick", {"n": n, "data": bytes([n % 256]) * 900})
                    if n % 7 == 0:
                        await asyncio.sleep(0)  # several messages per loop iteration: batched into one write
                await eventually(lambda: all(len(g) == 300 for g in got), 10, "every message on every client")
                assert direct.flusher().writes > before
                for values in got:
                    assert [v["n"] for v in values] == list(range(300))
                assert got[1][5]["data"] == bytes([5]) * 900
                assert await clients[0].invoke("Echo", "still fine") == "still fine"
            finally:
                for client in clients:
                    await client.close()

    asyncio.run(main())


def test_a_client_that_stops_reading_drops_its_own_audio_only() -> None:
    async def main() -> None:
        async with serve() as (url, endpoint):
            got: list[int] = []
            fast = await HubClient.connect(url, handlers={"Audio": lambda args: got.append(args[0]["n"])})
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            port = int(url.split(":")[2].split("/")[0])
            sock.connect(("127.0.0.1", port))
            slow = await connect(f"ws://127.0.0.1:{port}/h", sock=sock, max_queue=1, ping_interval=None)
            try:
                await slow.send('{"protocol":"json","version":1}\x1e')
                assert await slow.recv() == "{}\x1e"
                await eventually(lambda: len(endpoint.manager.all_open()) == 2, 5, "2 open connections")
                slow_connection = next(c for c in endpoint.manager.all_open() if c.connection_id != fast.connection_id)
                for n in range(2000):
                    broadcast(endpoint, "Audio", {"n": n, "data": b"\x01" * 2000}, drop_key="audio")
                    await asyncio.sleep(0)
                await eventually(lambda: len(got) == 2000, 10, "every frame on the reading client")
                assert got == list(range(2000))
                assert slow_connection.queue.dropped_frames > 0
                assert len(slow_connection.queue) <= slow_connection.queue.max_droppable
                # Reading again: what was not dropped arrives in order, ending with the last frame.
                seen: list[int] = []
                while not seen or seen[-1] != 1999:
                    raw = await wait_for(slow.recv(), 5)
                    import orjson

                    seen += [orjson.loads(r)["arguments"][0]["n"] for r in str(raw).split("\x1e") if r]
                assert seen == sorted(seen) and len(seen) < 2000
            finally:
                await fast.close()
                await slow.close()
                sock.close()

    asyncio.run(main())


def test_close_is_flushed_and_ends_the_socket() -> None:
    async def main() -> None:
        async with serve() as (url, endpoint):
            client = await HubClient.connect(url)
            try:
                await eventually(lambda: len(endpoint.manager.all_open()) == 1, 5, "1 open connection")
                connection = next(iter(endpoint.manager.all_open()))
                broadcast(endpoint, "Tick", 1)
                connection.close("bye", allow_reconnect=True)
                await wait_for(client.closed.wait(), 5)
                assert client.close_error == "bye" and client.allow_reconnect
            finally:
                await client.close()

    asyncio.run(main())


def test_permessage_deflate_uses_the_writer_task() -> None:
    async def main() -> None:
        async with serve(deflate=True) as (url, endpoint):
            got: list[int] = []
            client = await HubClient.connect(url, handlers={"Tick": lambda args: got.append(args[0])})
            try:
                await eventually(lambda: len(endpoint.manager.all_open()) == 1, 5, "1 open connection")
                before = direct.flusher().writes
                for n in range(50):
                    broadcast(endpoint, "Tick", n)
                await eventually(lambda: len(got) == 50, 5, "50 messages")
                assert got == list(range(50)) and direct.flusher().writes == before
            finally:
                await client.close()

    asyncio.run(main())


def test_a_queue_nobody_reads_stays_bounded_and_keeps_no_dropped_payload() -> None:
    from hub.signalr.outbound import OutboundQueue

    async def main() -> None:
        queue = OutboundQueue(max_droppable=25)
        for n in range(10_000):
            queue.put(bytes([n % 256]) * 1000, trackable=False, drop_key="audio")
        assert len(queue) == 25 and queue.queued_bytes == 25_000 and queue.dropped_frames == 9_975
        assert len(queue._entries) < 25 + 2 * 65  # compacted as it goes
        assert all(entry.payload == b"" for entry in queue._entries if entry.dropped)
        taken = queue.take(max_bytes=1 << 20)
        assert [entry.payload[0] for entry in taken] == [n % 256 for n in range(9_975, 10_000)]
        assert len(queue) == 0

    asyncio.run(main())
