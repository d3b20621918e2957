"""Transport rules straight over HTTP against `serve --conformance` (signalr-protocol.md 1.1-1.5)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.support.serve import running_hub
from tests.support.timing import wait_for

RS = b"\x1e"


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with running_hub("--conformance") as url:
        yield url


async def _negotiate(client: httpx.AsyncClient, path: str = "/testhub") -> dict[str, object]:
    response = await client.post(f"{path}/negotiate?negotiateVersion=1")
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def run(base: str, scenario: object) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await scenario(client)  # type: ignore[operator]

    asyncio.run(main())


def test_negotiate_lists_all_transports_and_sets_cookies(base: str) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        response = await client.post("/testhub/negotiate?negotiateVersion=1")
        body = response.json()
        assert response.headers["content-type"] == "application/json"
        assert [t["transport"] for t in body["availableTransports"]] == ["WebSockets", "ServerSentEvents", "LongPolling"]
        assert body["connectionId"] != body["connectionToken"]
        assert response.cookies.get("testCookie") == "testValue"
        no_ws = (await client.post("/testhub-nowebsockets/negotiate?negotiateVersion=1")).json()
        assert [t["transport"] for t in no_ws["availableTransports"]] == ["ServerSentEvents", "LongPolling"]
        assert (await client.get("/testhub/negotiate")).status_code == 405
        assert (await client.post("/TestHub/Negotiate?NegotiateVersion=abc")).json() == {
            "error": "The client requested a non-integer protocol version."
        }
        assert (await client.post("/authorizedhub/negotiate?negotiateVersion=1")).content == b""

    run(base, scenario)


def test_connection_id_errors(base: str) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        missing = await client.post("/testhub", content=b"x")
        assert (missing.status_code, missing.text) == (400, "Connection ID required")
        unknown = await client.get("/testhub?id=nope")
        assert (unknown.status_code, unknown.text) == (404, "No Connection with that ID")
        assert (await client.put("/testhub?id=nope")).status_code == 405

    run(base, scenario)


def test_long_polling_first_poll_immediate_then_data_then_delete_ends_pending_poll(base: str) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        token = (await _negotiate(client))["connectionToken"]
        first = await client.get(f"/testhub?id={token}")
        assert (first.status_code, first.content) == (200, b"")
        assert first.headers["content-type"] == "application/octet-stream"
        assert first.headers["cache-control"] == "no-cache, no-store"
        sent = await client.post(f"/testhub?id={token}", content=b'{"protocol":"json","version":1}\x1e')
        assert sent.status_code == 200
        handshake = await client.get(f"/testhub?id={token}")
        assert handshake.content == b"{}" + RS
        await client.post(f"/testhub?id={token}", content=b'{"type":1,"invocationId":"1","target":"Echo","arguments":["hi"]}\x1e'
                          b'{"type":1,"invocationId":"2","target":"GetActiveTransportName","arguments":[]}\x1e')
        replies: list[dict[str, object]] = []
        while len(replies) < 2:
            poll = await client.get(f"/testhub?id={token}")
            replies += [orjson.loads(r) for r in poll.content.split(RS) if r]
        assert replies == [{"type": 3, "invocationId": "1", "result": "hi"},
                           {"type": 3, "invocationId": "2", "result": "LongPolling"}]
        mismatch = await client.get(f"/testhub?id={token}", headers={"Accept": "text/event-stream"})
        assert (mismatch.status_code, mismatch.text) == (400, "Cannot change transports mid-connection")
        pending = asyncio.create_task(client.get(f"/testhub?id={token}"))
        await asyncio.sleep(0.1)
        assert not pending.done()
        deleted = await client.delete(f"/testhub?id={token}")
        assert deleted.status_code == 202
        assert (await wait_for(pending, 5)).status_code == 204
        gone = await client.get(f"/testhub?id={token}")
        assert gone.status_code == 404

    run(base, scenario)


def test_second_poll_ends_the_first_with_204(base: str) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        token = (await _negotiate(client))["connectionToken"]
        await client.get(f"/testhub?id={token}")
        first = asyncio.create_task(client.get(f"/testhub?id={token}"))
        await asyncio.sleep(0.1)
        second = asyncio.create_task(client.get(f"/testhub?id={token}"))
        assert (await wait_for(first, 5)).status_code == 204
        await client.delete(f"/testhub?id={token}")
        assert (await wait_for(second, 5)).status_code == 204

    run(base, scenario)


def test_sse_preamble_events_and_refusals(base: str) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        token = (await _negotiate(client))["connectionToken"]
        async with client.stream("GET", f"/testhub?id={token}", headers={"Accept": "text/event-stream"}) as stream:
            assert stream.headers["content-type"] == "text/event-stream"
            chunks = stream.aiter_raw()
            assert await wait_for(chunks.__anext__(), 5) == b":\r\n"
            posted = await client.post(f"/testhub?id={token}", content=b'{"protocol":"json","version":1}\x1e')
            assert posted.status_code == 200
            assert await wait_for(chunks.__anext__(), 5) == b"data: {}\x1e\r\n\r\n"
            delete = await client.delete(f"/testhub?id={token}")
            assert (delete.status_code, delete.text) == (400, "Cannot terminate this connection using the DELETE endpoint.")
        # The client left: the connection is gone.
        for _ in range(50):
            if (await client.post(f"/testhub?id={token}", content=b"")).status_code == 404:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the SSE connection outlived its stream")

    run(base, scenario)


def test_sse_refuses_messagepack_with_the_handshake_error(base: str) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        token = (await _negotiate(client))["connectionToken"]
        async with client.stream("GET", f"/testhub?id={token}", headers={"Accept": "text/event-stream"}) as stream:
            chunks = stream.aiter_raw()
            await wait_for(chunks.__anext__(), 5)
            await client.post(f"/testhub?id={token}", content=b'{"protocol":"messagepack","version":1}\x1e')
            event = await wait_for(chunks.__anext__(), 5)
            assert b"Cannot use the 'messagepack' protocol on the current transport." in event

    run(base, scenario)


def test_websocket_refused_where_not_enabled_and_for_unknown_ids(base: str) -> None:
    import websockets
    from websockets.asyncio.client import connect

    async def scenario(client: httpx.AsyncClient) -> None:
        ws_base = base.replace("http://", "ws://")
        token = (await _negotiate(client, "/testhub-nowebsockets"))["connectionToken"]
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with connect(f"{ws_base}/testhub-nowebsockets?id={token}"):
                pass
        assert refused.value.response.status_code == 404
        assert refused.value.response.body == b"WebSockets transport not supported by this end point type"
        with pytest.raises(websockets.InvalidStatus) as unknown:
            async with connect(f"{ws_base}/testhub?id=nope"):
                pass
        assert unknown.value.response.status_code == 404

    run(base, scenario)
