"""Brokers for tests: the same test body runs on the MemoryBroker and on a RedisBroker against real Redis."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hub.broker.base import Broker

KINDS = [pytest.param("memory", id="memory"), pytest.param("redis", id="redis")]


def broker_url(kind: str, request: pytest.FixtureRequest) -> str | None:
    """The Redis URL for kind "redis" (a flushed shared server), None for memory."""
    return str(request.getfixturevalue("redis_url")) if kind == "redis" else None


@contextlib.asynccontextmanager
async def open_broker(url: str | None, **options: Any) -> AsyncIterator[Broker]:
    broker: Broker
    if url is None:
        from hub.broker.memory import MemoryBroker

        broker = MemoryBroker(**options)
    else:
        from hub.broker.redis_broker import RedisBroker

        broker = RedisBroker(url, **options)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.close()


class Recorder:
    """A ConversationListener that keeps what it hears."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.frames: list[dict[str, Any]] = []
        self.gaps: list[str] = []

    def on_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def on_audio(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)

    def on_gap(self, reason: str) -> None:
        self.gaps.append(reason)
