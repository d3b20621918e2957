"""What an idle WebSocket connection keeps (docs/performance.md, "Memory"): under `python -m hub serve`'s WebSocket
protocol an open, idle hub connection is one parked ASGI task and nothing else (no writer task, no dispatcher
worker), and neither uvicorn nor websockets keeps the upgrade request. Work still runs: invocations past the
dispatcher's bound complete in order, and the writer task comes back for a client that stops reading."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from hub.signalr.dispatcher import MAX_QUEUED_INVOCATIONS
from hub.signalr.endpoint import HubEndpoint
from hub.signalr.light import LightEvent, LightQueue
from hub.signalr.transports.uvicorn_ws import LeanWebSocketProtocol
from tests.support.inproc_hub import running_hub
from tests.support.timing import eventually, wait_for

RS = "\x1e"
IDLE = 12


@contextlib.asynccontextmanager
async def serve() -> AsyncIterator[tuple[int, HubEndpoint, uvicorn.Server]]:
    async with running_hub(lean=True) as running:
        yield running


async def open_json(port: int) -> ClientConnection:
    ws = await connect(f"ws://127.0.0.1:{port}/h", ping_interval=None, compression=None)
    await ws.send('{"protocol":"json","version":1}' + RS)
    assert await wait_for(ws.recv(), 5) == "{}" + RS
    return ws


def server_tasks(name: str) -> int:
    names = [getattr(task.get_coro(), "__qualname__", "") for task in asyncio.all_tasks()]
    return sum(1 for qualname in names if qualname.endswith(name))


def test_an_idle_connection_is_one_parked_task_and_keeps_no_upgrade_request() -> None:
    async def main() -> None:
        async with serve() as (port, endpoint, server):
            sockets = [await open_json(port) for _ in range(IDLE)]
            try:
                await eventually(lambda: len(list(endpoint.manager.all_open())) == IDLE, 5, "every connection open")
                # Each socket ran its writer once (the start-up wake); none stays parked.
                await eventually(lambda: server_tasks("_Socket._write") == 0, 5, "writer tasks to end")
                assert server_tasks("run_asgi") == IDLE
                assert server_tasks("Dispatcher._run") == 0
                protocols = [p for p in server.server_state.connections if isinstance(p, LeanWebSocketProtocol)]
                assert len(protocols) == IDLE
                for protocol in protocols:
                    assert protocol.request is None
                    assert isinstance(protocol.queue, LightQueue) and protocol.queue.empty()
                    frame = protocol.conn.parser.gi_frame  # the frame parser, restarted after the upgrade
                    assert frame is not None and "request" not in frame.f_locals
                # Still a working connection: one invocation, then idle again.
                await sockets[0].send(json.dumps({"type": 1, "invocationId": "1", "target": "Echo",
                                                  "arguments": ["hi"]}) + RS)
                reply = json.loads(str(await wait_for(sockets[0].recv(), 5)).rstrip(RS))
                assert reply == {"type": 3, "invocationId": "1", "result": "hi"}
                await eventually(lambda: server_tasks("Dispatcher._run") == 0, 5, "the worker to end")
                await eventually(lambda: server_tasks("_Socket._write") == 0, 5, "writer tasks to end")
            finally:
                for ws in sockets:
                    await ws.close()
            await eventually(lambda: not list(endpoint.manager.all_open()), 5, "every connection gone")

    asyncio.run(main())


def test_invocations_past_the_dispatcher_bound_all_complete_in_order() -> None:
    async def main() -> None:
        async with serve() as (port, _endpoint, _server):
            ws = await open_json(port)
            try:
                count = MAX_QUEUED_INVOCATIONS * 3
                burst = "".join(json.dumps({"type": 1, "invocationId": str(n), "target": "Echo", "arguments": [n]}) + RS
                                for n in range(count))
                await ws.send(burst)  # one WebSocket message: the reader waits for room, nothing is refused
                results: list[Any] = []
                while len(results) < count:
                    raw = await wait_for(ws.recv(), 10)
                    results += [json.loads(r)["result"] for r in str(raw).split(RS) if r and '"type":3' in r]
                assert results == list(range(count))
            finally:
                await ws.close()

    asyncio.run(main())


def test_light_event_and_queue_keep_asyncio_semantics() -> None:
    async def main() -> None:
        event = LightEvent()
        fired: list[str] = []
        cancel = event.on_set(lambda: fired.append("a"))
        event.on_set(lambda: fired.append("b"))
        cancel()
        waiter = asyncio.get_running_loop().create_task(event.wait())
        await asyncio.sleep(0)
        assert not waiter.done() and not event.is_set()
        event.set()
        event.set()  # once
        assert await wait_for(waiter, 5) is True
        assert fired == ["b"]
        event.on_set(lambda: fired.append("late"))  # already set: at once
        assert fired == ["b", "late"]
        event.clear()
        assert not event.is_set()

        queue: LightQueue[int] = LightQueue()
        getter = asyncio.get_running_loop().create_task(queue.get())
        await asyncio.sleep(0)
        getter.cancel()  # a cancelled get takes nothing
        with contextlib.suppress(asyncio.CancelledError):
            await getter
        for n in range(3):
            queue.put_nowait(n)
        assert queue.qsize() == 3
        assert [await wait_for(queue.get(), 5) for _ in range(3)] == [0, 1, 2]
        assert queue.empty() and queue.qsize() == 0

    asyncio.run(main())
