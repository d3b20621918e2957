"""One time scale for every wait in the tests: raise VOICEHUB_TEST_TIMESCALE on a slow machine."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

TIME_SCALE = float(os.environ.get("VOICEHUB_TEST_TIMESCALE", "1"))

T = TypeVar("T")


def scaled(seconds: float) -> float:
    return seconds * TIME_SCALE


async def wait_for(awaitable: Awaitable[T], seconds: float = 5.0) -> T:
    """Await with a bounded, scaled timeout."""
    return await asyncio.wait_for(awaitable, scaled(seconds))


async def eventually(predicate: Callable[[], bool], seconds: float = 5.0, what: str = "condition") -> None:
    """Poll a predicate until it holds or the scaled deadline passes."""
    deadline = time.monotonic() + scaled(seconds)
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def eventually_sync(predicate: Callable[[], bool], seconds: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + scaled(seconds)
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
