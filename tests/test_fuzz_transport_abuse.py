"""Transport abuse on a real hub process (issue 8, point 5), with short timeouts set through VOICEHUB_* variables:

- slowloris: connections that send nothing or half a request's headers are closed after the header timeout, and a
  WebSocket that never sends the SignalR handshake after the handshake timeout, while the node keeps answering;
- negotiates that never connect are refused past the tenant's limit (429) and reaped after the disconnect timeout
  (the pending gauge returns to 0 and memory stays bounded);
- long-poll abuse: concurrent polls on one connection end the older ones with 204, unknown ids are 404, oversized
  POSTs 413, a poller that stops polling is reaped.
"""

from __future__ import annotations

import asyncio
import re
import socket

import httpx
import psutil
from websockets.sync.client import connect

from tests.reliability_rig import HubProcess, token
from tests.support.timing import eventually_sync

TIMEOUTS = {"VOICEHUB_HEADER_TIMEOUT": "2", "VOICEHUB_HANDSHAKE_TIMEOUT": "2", "VOICEHUB_DISCONNECT_TIMEOUT": "2"}


def _gauge(base: str, name: str) -> float:
    text = httpx.get(base + "/metrics", timeout=5).text
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(100) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_slowloris_headers_and_handshakes_are_cut() -> None:
    with HubProcess(env=TIMEOUTS) as hub:
        tok = asyncio.run(token(hub.base))
        sockets: list[socket.socket] = []
        try:
            for n in range(150):
                sock = socket.create_connection(("127.0.0.1", hub.port))
                sock.settimeout(0.01)
                if n % 3:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # never finished
                sockets.append(sock)
            answer = httpx.post(hub.base + "/hubs/voice/negotiate?negotiateVersion=1",
                                headers={"Authorization": f"Bearer {tok}"}, timeout=5).json()
            url = hub.base.replace("http://", "ws://") + f"/hubs/voice?id={answer['connectionToken']}&access_token={tok}"
            with connect(url, open_timeout=5) as silent:  # upgraded, but no SignalR handshake
                assert hub.healthz() == 200  # the node still answers
                eventually_sync(lambda: all(_closed(s) for s in sockets), 10, "slow connections to be closed")
                try:
                    silent.recv(timeout=10)
                except Exception:
                    pass
                assert silent.close_code is not None, "the handshake-less WebSocket was not closed"
            assert hub.healthz() == 200
        finally:
            for sock in sockets:
                sock.close()
        assert "Traceback" not in hub.log()


def test_negotiates_that_never_connect_are_limited_and_reaped() -> None:
    env = {**TIMEOUTS, "VOICEHUB_MAX_CONNECTIONS_PER_TENANT": "50", "VOICEHUB_DISCONNECT_TIMEOUT": "4"}
    with HubProcess(env=env) as hub:
        tok = asyncio.run(token(hub.base))
        process = psutil.Process(hub.proc.pid)
        baseline = process.memory_info().rss

        async def flood() -> dict[int, int]:
            statuses: dict[int, int] = {}
            limits = httpx.Limits(max_connections=20)
            async with httpx.AsyncClient(timeout=10, limits=limits, headers={"Authorization": f"Bearer {tok}"}) as http:
                async def one() -> None:
                    answer = await http.post(hub.base + "/hubs/voice/negotiate?negotiateVersion=1")
                    statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1

                for _ in range(4):
                    await asyncio.gather(*(one() for _ in range(20)))
            return statuses

        statuses = asyncio.run(flood())
        assert statuses == {200: 50, 429: 30}, statuses
        assert _gauge(hub.base, "voicehub_pending_connections") == 50
        peak = process.memory_info().rss
        eventually_sync(lambda: _gauge(hub.base, "voicehub_pending_connections") == 0, 10, "negotiates to be reaped")
        again = httpx.post(hub.base + "/hubs/voice/negotiate?negotiateVersion=1",
                           headers={"Authorization": f"Bearer {tok}"}, timeout=5)
        assert again.status_code == 200 and "connectionToken" in again.json()
        print(f"\n80 negotiates: {statuses}; hub RSS {baseline / 2**20:.0f} MB -> {peak / 2**20:.0f} MB at 50 pending")
        assert peak - baseline < 50 * 2**20  # bounded (scripts/soak_connections.py measures 10,000)


def test_long_poll_abuse() -> None:
    with HubProcess(env=TIMEOUTS) as hub:
        tok = asyncio.run(token(hub.base))

        async def open_poller(http: httpx.AsyncClient) -> str:
            negotiated = (await http.post(hub.base + "/hubs/voice/negotiate?negotiateVersion=1")).json()
            url = f"{hub.base}/hubs/voice?id={negotiated['connectionToken']}"
            assert (await http.get(url)).status_code == 200
            await http.post(url, content=b'{"protocol":"json","version":1}\x1e')
            assert (await http.get(url)).content == b"{}\x1e"
            return url

        async def main() -> None:
            async with httpx.AsyncClient(timeout=20, headers={"Authorization": f"Bearer {tok}"}) as http:
                url = await open_poller(http)
                polls = [asyncio.ensure_future(http.get(url)) for _ in range(10)]  # each newer poll ends the older
                await http.post(url, content=b'{"type":1,"invocationId":"1","target":"ListConversations","arguments":[]}\x1e')
                too_big = await http.post(url, content=b"x" * (1024 * 1024 + 1))
                assert (too_big.status_code, too_big.text) == (413, "Request body larger than 1048576 bytes.")
                while not any(p.done() and p.result().status_code == 200 for p in polls):
                    extra = await http.get(url)  # a poll that arrived before the others may still be waiting
                    if extra.status_code == 200:
                        break
                await http.delete(url)
                answers = [answer.status_code for answer in await asyncio.gather(*polls)]
                assert set(answers) <= {200, 204} and answers.count(200) <= 1, answers
                assert (await http.get(url)).status_code in (204, 404)
                unknown = await http.get(f"{hub.base}/hubs/voice?id=nope")
                assert (unknown.status_code, unknown.text) == (404, "No Connection with that ID")
                missing = await http.get(f"{hub.base}/hubs/voice")
                assert (missing.status_code, missing.text) == (400, "Connection ID required")
                idle = await open_poller(http)  # this poller stops polling: reaped after the disconnect timeout

            def gone() -> bool:
                return 'transport="longpolling"' not in httpx.get(hub.base + "/metrics", timeout=5).text.lower()

            await asyncio.to_thread(eventually_sync, gone, 10, "the idle poller to be reaped")
            async with httpx.AsyncClient(timeout=10) as http:
                assert (await http.get(idle)).status_code == 404

        asyncio.run(main())
        assert "Traceback" not in hub.log()
