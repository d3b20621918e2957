"""Helpers shared by the store, auth and REST tests: a settable clock and stores of both kinds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.auth.keys import KeyStore
from hub.auth.keystore import MemoryKeyStore, RedisKeyStore
from hub.store.base import ConversationStore
from hub.store.memory import MemoryConversationStore
from hub.store.redis_store import RedisConversationStore

STORE_KINDS = ["memory", "redis"]
T0 = datetime(2025, 6, 16, 14, 22, 0, tzinfo=UTC)


class FakeClock:
    """A wall clock that moves only when told to."""

    def __init__(self, start: datetime = T0) -> None:
        self.value = start

    def __call__(self) -> datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)


def redis_url_for(kind: str, request: pytest.FixtureRequest) -> str | None:
    """The flushed shared redis for the redis variant (the fixture is only started when asked for)."""
    return str(request.getfixturevalue("redis_url")) if kind == "redis" else None


def make_store(redis_url: str | None, clock: Callable[[], datetime]) -> ConversationStore:
    if redis_url is None:
        return MemoryConversationStore(now=clock)
    return RedisConversationStore.from_url(redis_url, prefix="test", now=clock)


def make_key_store(redis_url: str | None) -> KeyStore:
    return MemoryKeyStore() if redis_url is None else RedisKeyStore.from_url(redis_url, prefix="test")


async def close_store(store: object) -> None:
    aclose = getattr(store, "aclose", None)
    if aclose is not None:
        await aclose()


def run_with_store(redis_url: str | None, body: Callable[[ConversationStore, FakeClock], Awaitable[None]]) -> None:
    """Run `body(store, clock)` on a fresh event loop, closing the store's connections after."""

    async def main() -> None:
        clock = FakeClock()
        store = make_store(redis_url, clock)
        try:
            await body(store, clock)
        finally:
            await close_store(store)

    asyncio.run(main())


def turn(turn_id: str, role: str, text: str, start: float, end: float, **extra: Any) -> dict[str, Any]:
    return {"turnId": turn_id, "role": role, "text": text, "startTime": start, "endTime": end, "confidence": 0.9,
            "words": [], **extra}


SEED_COSTS: dict[str, Any] = {
    "currency": "USD",
    "total": 0.094,
    "breakdown": {
        "llm": {"provider": "openai", "model": "gpt-4o", "inputTokens": 1840, "outputTokens": 620, "cost": 0.041},
        "tts": {"provider": "elevenlabs", "characters": 2340, "cost": 0.028},
        "stt": {"provider": "deepgram", "audioSeconds": 108, "cost": 0.018},
        "telephony": {"provider": "twilio", "minutes": 4, "cost": 0.007},
    },
}

SEED_ANALYSIS: dict[str, Any] = {
    "completedAt": "2025-06-16T14:26:15Z",
    "sentiment": "positive",
    "sentimentScore": 0.81,
    "sentimentBreakdown": {"agent": 0.88, "user": 0.74},
    "intent": "billing_inquiry",
    "entities": [{"type": "invoice_id", "value": "INV-2025-0612"}],
    "summary": "Customer asked about a charge.",
    "topics": ["billing"],
    "customFields": {"resolution_status": "resolved"},
    "callQualityScore": 4.2,
    "agentPerformanceNotes": "Clear.",
}
