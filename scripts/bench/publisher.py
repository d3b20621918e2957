"""The publisher process: plays C conversations of agent audio (50 frames/s each) and transcript turns (~1 per 2 s).

    python -m bench.publisher '<json config>'   (PYTHONPATH=scripts; started by scripts/bench_fanout.py)

Config: {"kind": "hub"|"socketio"|"ws", "redis_url", "conversations": [...], "duration"}. Every frame carries its
publish time (wall clock, us) in its first 8 bytes, every transcript in the last word of its text. Kinds:
hub = hub.publisher.Publisher (the agent pipeline's API: Lua publish, audiolog); socketio = AsyncRedisManager in
write-only mode (emit to the conversation's room); ws = a plain PUBLISH of a MessagePack map per message.
Conversations are staggered over the 20 ms tick. Prints `DONE <json>`: messages published per conversation and
how late the publisher ran behind its schedule (a late publisher would make every server look slow).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack

from bench.common import FRAMES_PER_SECOND, TRANSCRIPT_INTERVAL, now_us, stamped_frame

TICK = 1 / FRAMES_PER_SECOND
Send = Callable[[int], Awaitable[None]]


async def senders(config: dict[str, Any]) -> tuple[list[tuple[Send, Send]], Callable[[], Awaitable[None]]]:
    """(audio, transcript) send functions per conversation, and a close function."""
    kind = config["kind"]
    if kind == "hub":
        return await _hub_senders(config)
    if kind == "socketio":
        return _socketio_senders(config)
    return _redis_senders(config)


async def _hub_senders(config: dict[str, Any]) -> tuple[list[tuple[Send, Send]], Callable[[], Awaitable[None]]]:
    from hub.broker.redis_broker import RedisBroker
    from hub.publisher import Publisher

    # One connection per concurrent conversation (the default pool of 32 would make conversations wait for
    # each other, and time out, beyond 32 conversations).
    broker = RedisBroker(config["redis_url"], max_connections=len(config["conversations"]) + 8)
    await broker.start()
    out: list[tuple[Send, Send]] = []
    for cid in config["conversations"]:
        publisher = Publisher(broker, cid)

        async def audio(at: int, p: Publisher = publisher) -> None:
            await p.send_agent_audio(stamped_frame(at))

        async def turn(at: int, p: Publisher = publisher) -> None:
            await p.send_transcript("agent", f"bench turn {at}", is_final=True, start_time=0.0, end_time=1.0)

        out.append((audio, turn))
    return out, broker.close


def _socketio_senders(config: dict[str, Any]) -> tuple[list[tuple[Send, Send]], Callable[[], Awaitable[None]]]:
    import socketio

    manager = socketio.AsyncRedisManager(config["redis_url"], write_only=True)
    out: list[tuple[Send, Send]] = []
    for cid in config["conversations"]:
        frames = [0]

        async def audio(at: int, cid: str = cid, frames: list[int] = frames) -> None:
            await manager.emit("AudioFrame", _frame(cid, frames, at), room=cid, namespace="/")

        async def turn(at: int, cid: str = cid) -> None:
            await manager.emit("TranscriptTurn", _turn(cid, at), room=cid, namespace="/")

        out.append((audio, turn))

    async def close() -> None:
        if manager.redis is not None:
            await manager.redis.aclose()

    return out, close


def _redis_senders(config: dict[str, Any]) -> tuple[list[tuple[Send, Send]], Callable[[], Awaitable[None]]]:
    import redis.asyncio as redis

    client = redis.Redis.from_url(config["redis_url"], max_connections=len(config["conversations"]) + 8)
    out: list[tuple[Send, Send]] = []
    for cid in config["conversations"]:
        frames = [0]
        channel = "bench:" + cid

        async def audio(at: int, cid: str = cid, frames: list[int] = frames, channel: str = channel) -> None:
            await client.publish(channel, msgpack.packb({"type": "audio", **_frame(cid, frames, at)}))

        async def turn(at: int, cid: str = cid, channel: str = channel) -> None:
            await client.publish(channel, msgpack.packb({"type": "transcript", **_turn(cid, at)}))

        out.append((audio, turn))
    return out, client.aclose


def _frame(cid: str, frames: list[int], at: int) -> dict[str, Any]:
    frame = frames[0]
    frames[0] += 1
    return {"conversationId": cid, "track": "agent", "frame": frame, "encoding": "pcm_s16le", "sampleRate": 24000,
            "channels": 1, "timestampMs": frame * 20, "data": stamped_frame(at)}


def _turn(cid: str, at: int) -> dict[str, Any]:
    return {"conversationId": cid, "turnId": f"turn_{at}", "role": "agent", "text": f"bench turn {at}", "isFinal": True,
            "startTime": 0.0, "endTime": 1.0, "confidence": 1.0, "words": []}


async def play(audio: Send, turn: Send, offset: float, start: float, duration: float, counts: dict[str, int],
               late: list[float]) -> None:
    tick = 0
    next_turn = start + offset + (offset * 97) % TRANSCRIPT_INTERVAL
    while True:
        due = start + offset + tick * TICK
        if due - start >= duration:
            return
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        late.append(max(0.0, -delay))
        try:
            await audio(now_us())
            counts["audio"] += 1
        except Exception:
            counts["errors"] += 1  # not published: not expected by the subscribers either
        if due >= next_turn:
            try:
                await turn(now_us())
                counts["transcripts"] += 1
            except Exception:
                counts["errors"] += 1
            next_turn += TRANSCRIPT_INTERVAL
        tick += 1


async def main(config: dict[str, Any]) -> None:
    pairs, close = await senders(config)
    duration = float(config["duration"])
    counts = {cid: {"audio": 0, "transcripts": 0, "errors": 0} for cid in config["conversations"]}
    late: list[float] = [0.0]
    start = time.monotonic() + 0.05
    print(f"STARTED {now_us()}", flush=True)
    n = len(pairs)
    await asyncio.gather(*(play(audio, turn, TICK * i / n, start, duration, counts[cid], late)
                           for i, ((audio, turn), cid) in enumerate(zip(pairs, config["conversations"], strict=True))))
    await close()
    late.sort()
    print("DONE " + json.dumps({"counts": counts, "late_p99_ms": late[int(len(late) * 0.99)] * 1000,
                                "late_max_ms": late[-1] * 1000}), flush=True)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(json.loads(sys.argv[1])))
