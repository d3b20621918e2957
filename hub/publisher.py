"""The Python API of an agent pipeline: publish agent audio, transcripts, status, costs and analysis of one conversation."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hub.broker.base import Broker, Subscription
from hub.broker.redis_broker import RedisBroker

AGENT_RATE = 24_000
FRAME_BYTES = AGENT_RATE // 50 * 2  # 20 ms of PCM16 mono at 24 kHz


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def connect(redis_url: str, prefix: str = "voicehub") -> RedisBroker:
    """A started RedisBroker for a pipeline in its own process; close() it when done."""
    broker = RedisBroker(redis_url, prefix=prefix)
    await broker.start()
    return broker


class _CallerAudio:
    def __init__(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self.callback = callback

    def on_event(self, event: dict[str, Any]) -> None:
        return None

    def on_audio(self, frame: dict[str, Any]) -> None:
        if frame.get("track") == "caller":
            self.callback(frame)

    def on_gap(self, reason: str) -> None:
        return None


class Publisher:
    def __init__(self, broker: Broker, conversation_id: str, *, started: float | None = None) -> None:
        self.broker = broker
        self.conversation_id = conversation_id
        self.started = time.monotonic() if started is None else started
        self.frame = 0
        self._pending = b""
        self._samples = 0  # agent samples published: the agent track's own timeline
        self._origin_ms = 0

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "conversationId": self.conversation_id, **fields, "timestamp": now_iso()}

    async def send_agent_audio(self, pcm24k: bytes) -> None:
        """Split into 20 ms frames (a partial tail waits for the next call, or flush_agent_audio)."""
        data = self._pending + pcm24k
        whole = len(data) - len(data) % FRAME_BYTES
        self._pending = data[whole:]
        for start in range(0, whole, FRAME_BYTES):
            await self._frame(data[start:start + FRAME_BYTES])

    async def flush_agent_audio(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, b""
            await self._frame(pending + b"\0" * (FRAME_BYTES - len(pending)))

    async def _frame(self, chunk: bytes) -> None:
        if self.frame == 0:
            self._origin_ms = int((time.monotonic() - self.started) * 1000)  # agent track starts when it first speaks
        timestamp = self._origin_ms + self._samples * 1000 // AGENT_RATE
        await self.broker.publish_audio(self.conversation_id, {
            "conversationId": self.conversation_id, "track": "agent", "frame": self.frame, "encoding": "pcm_s16le",
            "sampleRate": AGENT_RATE, "channels": 1, "timestampMs": timestamp, "data": chunk})
        self.frame += 1
        self._samples += len(chunk) // 2

    async def send_transcript(self, role: str, text: str, *, is_final: bool, turn_id: str | None = None,
                              words: list[dict[str, Any]] | None = None, start_time: float, end_time: float,
                              confidence: float = 1.0) -> int:
        return await self.broker.publish_event(self.conversation_id, self._event(
            "transcript", turnId=turn_id or new_turn_id(), role=role, text=text, isFinal=is_final,
            startTime=round(start_time, 3), endTime=round(end_time, 3), confidence=confidence, words=words or []))

    async def send_status(self, **patch: Any) -> int:
        return await self.broker.publish_event(self.conversation_id, self._event("status", patch=patch))

    async def send_cost(self, costs: dict[str, Any]) -> int:
        return await self.broker.publish_event(self.conversation_id, self._event("cost", costs=costs))

    async def send_analysis(self, analysis: dict[str, Any]) -> int:
        return await self.broker.publish_event(self.conversation_id, self._event("analysis", analysis=analysis))

    def subscribe_caller_audio(self, callback: Callable[[dict[str, Any]], None]) -> Subscription:
        return self.broker.subscribe_conversation(self.conversation_id, _CallerAudio(callback))

    def subscribe_control(self, callback: Callable[[dict[str, Any]], None]) -> Subscription:
        return self.broker.subscribe_control(self.conversation_id, callback)


def new_turn_id() -> str:
    return "turn_" + uuid.uuid4().hex[:16]
