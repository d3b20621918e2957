"""The per-connection send queue: encode once, drop audio oldest-first per key, never drop the rest."""

from __future__ import annotations

import asyncio

from hub.signalr.outbound import OutboundQueue, OutgoingMessage, join_payloads
from protocol import InvocationMessage, JsonHubProtocol, MessagePackHubProtocol


def test_message_is_encoded_once_per_protocol_and_shared() -> None:
    message = OutgoingMessage(InvocationMessage("AudioFrame", [{"data": b"\x00\x01" * 320}]))
    json, msgpack = JsonHubProtocol(), MessagePackHubProtocol()
    first = message.payload(json)
    assert message.payload(json) is first and isinstance(first, str)
    binary = message.payload(msgpack)
    assert isinstance(binary, bytes) and message.payload(msgpack) is binary
    assert b"\xc5\x02\x80" + b"\x00\x01" * 320 in binary  # bin 16 with the raw samples: no base64


def test_droppable_frames_go_oldest_first_per_key_and_are_reported() -> None:
    async def main() -> None:
        drops: list[tuple[object, int]] = []
        queue = OutboundQueue(max_bytes=10_000, max_droppable=3, on_drop=lambda k, n: drops.append((k, n)))
        for i in range(5):
            assert queue.put(f"a{i}", trackable=True, drop_key="audio:1")
        assert queue.put("turn", trackable=True)
        assert queue.put("b0", trackable=True, drop_key="audio:2")
        assert drops == [("audio:1", 1), ("audio:1", 1)]
        taken = [e.payload for e in queue.take()]
        assert taken == ["a2", "a3", "a4", "turn", "b0"]
        assert queue.queued_bytes == 0 and queue.dropped_frames == 2

    asyncio.run(main())


def test_never_dropped_frames_hit_the_hard_limit_instead() -> None:
    async def main() -> None:
        queue = OutboundQueue(max_bytes=10, max_droppable=3)
        assert queue.put("12345", trackable=True)
        assert queue.put("67890", trackable=True)
        assert not queue.put("x", trackable=True)
        assert queue.put("close", trackable=False, force=True)
        assert join_payloads([e.payload for e in queue.take(max_bytes=7)]) == "12345"
        assert [e.payload for e in queue.take()] == ["67890", "close"]

    asyncio.run(main())
