"""The plain ceiling: a `websockets` server that relays one Redis channel per conversation to its sockets.

    python -m bench.peers.ws_server --port P --redis-url URL   (PYTHONPATH=scripts)

A client connects to `/?protocol=msgpack|json`, sends `join <conversationId>` and gets `joined <conversationId>`,
then every message published on `bench:<conversationId>` (MessagePack maps with `type` audio|transcript). The
channel is subscribed while the conversation has a client. MessagePack clients get the Redis payload as is (no re-
encoding); JSON clients get it decoded once, `data` as base64, encoded once. Fan-out is `websockets.broadcast` (no
awaits per socket). No permessage-deflate (audio does not compress; per-socket compression would cost more than
everything else).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgpack
import orjson
import redis.asyncio as redis
from websockets.asyncio.server import ServerConnection, broadcast, serve

PREFIX = "bench:"


class Relay:
    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url)
        self.pubsub = self.redis.pubsub()
        self.rooms: dict[str, tuple[set[ServerConnection], set[ServerConnection]]] = {}  # (msgpack, json)

    async def start(self) -> None:
        await self.pubsub.subscribe(PREFIX + "-")  # a first channel so the reader has a connection
        asyncio.get_running_loop().create_task(self.read())

    async def read(self) -> None:
        while True:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                continue
            room = self.rooms.get(message["channel"].decode()[len(PREFIX):])
            if room is None:
                continue
            binary, text = room
            raw: bytes = message["data"]
            if binary:
                broadcast(binary, raw)
            if text:
                value = msgpack.unpackb(raw)
                if "data" in value:
                    value["data"] = base64.b64encode(value["data"]).decode("ascii")
                broadcast(text, orjson.dumps(value).decode())

    async def handler(self, ws: ServerConnection) -> None:
        parts = urlsplit(ws.request.path if ws.request else "/")
        binary = parse_qs(parts.query).get("protocol", ["msgpack"])[0] == "msgpack"
        joined: list[str] = []
        try:
            async for message in ws:
                if isinstance(message, str) and message.startswith("join "):
                    conversation_id = message[5:]
                    await self.join(ws, conversation_id, binary)
                    joined.append(conversation_id)
                    await ws.send("joined " + conversation_id)
        finally:
            for conversation_id in joined:
                await self.leave(ws, conversation_id)

    async def join(self, ws: ServerConnection, conversation_id: str, binary: bool) -> None:
        room = self.rooms.get(conversation_id)
        if room is None:
            room = self.rooms[conversation_id] = (set(), set())
            await self.pubsub.subscribe(PREFIX + conversation_id)
        (room[0] if binary else room[1]).add(ws)

    async def leave(self, ws: ServerConnection, conversation_id: str) -> None:
        room = self.rooms.get(conversation_id)
        if room is None:
            return
        room[0].discard(ws)
        room[1].discard(ws)
        if not room[0] and not room[1]:
            del self.rooms[conversation_id]
            with contextlib.suppress(Exception):
                await self.pubsub.unsubscribe(PREFIX + conversation_id)


async def main(port: int, url: str) -> None:
    relay = Relay(url)
    await relay.start()
    async with serve(relay.handler, "127.0.0.1", port, ping_interval=None, max_size=1 << 20,
                     compression=None) as server:
        print(f"ws peer listening on {port}", flush=True)
        await server.serve_forever()


def cli(argv: Any = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args(argv)
    import uvloop

    uvloop.run(main(args.port, args.redis_url))


if __name__ == "__main__":
    cli()
