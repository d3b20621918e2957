"""A subscriber process: many connections to one server kind, each watching one conversation.

    python -m bench.subscriber '<json config>'   (PYTHONPATH=scripts; started by scripts/bench_fanout.py)

Config: {"kind": "hub"|"socketio"|"ws", "url", "protocol": "json"|"msgpack", "token", "conversations": [id per
connection], "stall": [[ids] per extra connection that subscribes to them, then stops reading], "idle_first": bool}.
With
idle_first it prints `OPEN <n>` once every connection is open and waits for a line before subscribing (memory
mode). Prints `READY <n>` once every connection is subscribed, then reads commands on stdin: `START <us>`
(latencies count for messages published at or after <us>), `STOP` (prints `RESULT <json>`: counts per
conversation and a latency histogram).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from typing import Any, Protocol

import msgpack
import orjson

from bench.common import Histogram, now_us, stamp_of

CONNECT_CONCURRENCY = 20
STALL_RCVBUF = 4096


class Counter:
    def __init__(self) -> None:
        self.audio: dict[str, int] = {}
        self.transcripts: dict[str, int] = {}
        self.hist = Histogram()
        self.warm_us = 1 << 62
        self.errors = 0

    def audio_frame(self, conversation_id: str, data: Any) -> None:
        self.audio[conversation_id] = self.audio.get(conversation_id, 0) + 1
        stamp = stamp_of(data)
        if stamp >= self.warm_us:
            self.hist.add((now_us() - stamp) / 1000)

    def transcript(self, conversation_id: str, text: str) -> None:
        self.transcripts[conversation_id] = self.transcripts.get(conversation_id, 0) + 1
        stamp = int(text.rsplit(" ", 1)[-1])
        if stamp >= self.warm_us:
            self.hist.add((now_us() - stamp) / 1000)


HUB_OPTIONS = {"audio": "agent", "encoding": "pcm_s16le", "sampleRate": 24000, "transcript": True, "partials": False}


class Connection(Protocol):
    async def subscribe(self, conversation_id: Any) -> None: ...

    async def close(self) -> None: ...


class HubConnection:
    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    async def open(cls, config: dict[str, Any], counter: Counter) -> HubConnection:
        from hub.client.signalr import HubClient

        def on_audio(args: list[Any]) -> None:
            frame = args[0]
            counter.audio_frame(frame["conversationId"], frame["data"])

        def on_turn(args: list[Any]) -> None:
            turn = args[0]
            counter.transcript(turn["conversationId"], turn["text"])

        client = await HubClient.connect(config["url"] + "/hubs/voice", token=config["token"],
                                         msgpack=config["protocol"] == "msgpack",
                                         handlers={"AudioFrame": on_audio, "TranscriptTurn": on_turn})
        return cls(client)

    async def subscribe(self, conversation_id: str) -> None:
        await self.client.invoke("Subscribe", conversation_id, HUB_OPTIONS)

    async def close(self) -> None:
        await self.client.close()


class StalledHubConnection:
    """A monitor that subscribes to audio and then never reads again (tiny receive buffer, no reader)."""

    def __init__(self, ws: Any, sock: socket.socket) -> None:
        self.ws = ws
        self.sock = sock

    @classmethod
    async def open(cls, config: dict[str, Any], counter: Counter) -> StalledHubConnection:
        import httpx
        from websockets.asyncio.client import connect

        base = config["url"]
        async with httpx.AsyncClient(timeout=10) as http:
            body = (await http.post(base + "/hubs/voice/negotiate?negotiateVersion=1",
                                    headers={"Authorization": "Bearer " + config["token"]})).json()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALL_RCVBUF)
        port = int(base.rsplit(":", 1)[1])
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        ws = await connect(f"ws://127.0.0.1:{port}/hubs/voice?id={body['connectionToken']}&access_token={config['token']}",
                           sock=sock, max_queue=1, ping_interval=None, compression=None)
        await ws.send('{"protocol":"json","version":1}\x1e')
        await ws.recv()
        return cls(ws, sock)

    async def subscribe(self, conversation_ids: Any) -> None:
        """Every conversation given (a list: a dashboard watching all calls that stops reading)."""
        from protocol.json_codec import JsonHubProtocol
        from protocol.messages import InvocationMessage

        ids = conversation_ids if isinstance(conversation_ids, list) else [conversation_ids]
        for n, conversation_id in enumerate(ids):
            message = InvocationMessage("Subscribe", [conversation_id, HUB_OPTIONS], str(n + 1))
            await self.ws.send(JsonHubProtocol().encode(message).decode())
        # From here on nobody calls recv(): the library stops reading once its queue holds one message.

    async def close(self) -> None:
        self.ws.transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.wait_closed(), 2)
        self.sock.close()


class SocketioConnection:
    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    async def open(cls, config: dict[str, Any], counter: Counter) -> SocketioConnection:
        import socketio

        client = socketio.AsyncClient(reconnection=False, handle_sigint=False,
                                      serializer="msgpack" if config["protocol"] == "msgpack" else "default")

        async def on_audio(frame: dict[str, Any]) -> None:
            counter.audio_frame(frame["conversationId"], frame["data"])

        async def on_turn(turn: dict[str, Any]) -> None:
            counter.transcript(turn["conversationId"], turn["text"])

        client.on("AudioFrame", on_audio)
        client.on("TranscriptTurn", on_turn)
        await client.connect(config["url"], transports=["websocket"], wait_timeout=10)
        return cls(client)

    async def subscribe(self, conversation_id: str) -> None:
        await self.client.call("join", conversation_id, timeout=10)

    async def close(self) -> None:
        await self.client.disconnect()


class WsConnection:
    """The relay's subscriber on the same lean WebSocket as the hub's client (hub.client.ws_transport): each
    message is decoded in the socket's read callback."""

    def __init__(self, counter: Counter, binary: bool) -> None:
        self.counter = counter
        self.binary = binary
        self.ws: Any = None
        self.joined: asyncio.Queue[bytes] = asyncio.Queue()

    @classmethod
    async def open(cls, config: dict[str, Any], counter: Counter) -> WsConnection:
        from hub.client.ws_transport import open_websocket

        connection = cls(counter, config["protocol"] == "msgpack")
        url = config["url"].replace("http://", "ws://") + f"/?protocol={config['protocol']}"
        connection.ws = await open_websocket(url, connection.on_message, max_size=4 * 1024 * 1024)
        return connection

    def on_message(self, raw: bytes, text: bool) -> None:
        if text and raw.startswith(b"joined"):
            self.joined.put_nowait(raw)
            return
        # An exception here fails this connection (the transport closes it): what follows counts as lost.
        message = msgpack.unpackb(raw) if self.binary else orjson.loads(raw)
        if message["type"] == "audio":
            self.counter.audio_frame(message["conversationId"], message["data"])
        else:
            self.counter.transcript(message["conversationId"], message["text"])

    async def subscribe(self, conversation_id: str) -> None:
        await self.ws.send("join " + conversation_id)
        await asyncio.wait_for(self.joined.get(), 10)  # once the server has subscribed the Redis channel

    async def close(self) -> None:
        await self.ws.close()


async def main(config: dict[str, Any]) -> None:
    counter = Counter()
    kind: type[Any] = {"hub": HubConnection, "socketio": SocketioConnection, "ws": WsConnection}[config["kind"]]
    plan = [(kind, c) for c in config["conversations"]] + [(StalledHubConnection, c) for c in config.get("stall", [])]
    connections: list[Connection] = []
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def open_one(cls: Any) -> Connection:
        async with limit:
            connection: Connection = await cls.open(config, counter)
            connections.append(connection)
            return connection

    async def subscribe_all() -> None:
        async def one(connection: Connection, conversation_id: Any) -> None:
            async with limit:
                await connection.subscribe(conversation_id)

        await asyncio.gather(*(one(c, cid) for c, (_, cid) in zip(opened, plan, strict=True)))

    opened = await asyncio.gather(*(open_one(cls) for cls, _ in plan))
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    if config.get("idle_first"):
        print(f"OPEN {len(opened)}", flush=True)
        await reader.readline()  # SUBSCRIBE
    await subscribe_all()
    print(f"READY {len(opened)}", flush=True)
    while True:
        line = (await reader.readline()).decode().strip()
        if line.startswith("START"):
            counter.warm_us = int(line.split()[1])
        elif line == "STOP" or not line:
            break
    result = {"audio": counter.audio, "transcripts": counter.transcripts, "hist": counter.hist.dump()}
    print("RESULT " + json.dumps(result), flush=True)
    for connection in connections:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.close(), 5)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(json.loads(sys.argv[1])))
