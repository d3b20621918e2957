"""What a Python team would pick: python-socketio with AsyncRedisManager, served by uvicorn (ASGI) like the hub.

    python -m bench.peers.socketio_server --port P --redis-url URL [--serializer default|msgpack]

A client connects over the WebSocket transport and calls `join(conversationId)`: the server puts it in that
room and acknowledges. Publishers emit into rooms through `AsyncRedisManager(url, write_only=True)`; every
server node receives every emit on the manager's one Redis channel (socket.io's design) and sends it to the room.
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio
import uvicorn


def build(url: str, serializer: str) -> Any:
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=socketio.AsyncRedisManager(url),
                               serializer=serializer, cors_allowed_origins=[])

    async def join(sid: str, conversation_id: str) -> bool:
        await sio.enter_room(sid, conversation_id)
        return True

    sio.on("join", join)

    return socketio.ASGIApp(sio)


def cli(argv: Any = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--serializer", default="default", choices=("default", "msgpack"))
    args = parser.parse_args(argv)
    print(f"socketio peer listening on {args.port}", flush=True)
    uvicorn.run(build(args.redis_url, args.serializer), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    cli()
