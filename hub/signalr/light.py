"""Per-connection asyncio primitives that cost nothing while nobody waits.

`asyncio.Event` and `asyncio.Queue` each allocate their waiter deques up front (about 0.8 KB per Event and 3.3 KB
per Queue, mostly empty deque blocks). A hub holds a few of them per connection, and most connections are idle
monitors, so these versions make their waiter lists on demand. Single event loop, no thread safety, as asyncio's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def _wake(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


class LightEvent:
    """`asyncio.Event`'s interface (`set`, `clear`, `is_set`, `wait`) plus `on_set` callbacks."""

    __slots__ = ("_flag", "_waiters", "_callbacks")

    def __init__(self) -> None:
        self._flag = False
        self._waiters: list[asyncio.Future[None]] | None = None
        self._callbacks: list[Callable[[], None]] | None = None

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        if self._flag:
            return
        self._flag = True
        waiters, self._waiters = self._waiters, None
        if waiters:
            _wake(waiters)
        callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks or ():
            callback()

    def clear(self) -> None:
        self._flag = False

    async def wait(self) -> bool:
        if self._flag:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return True

    def on_set(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback()` (once) when the event is set, at once if it is set; returns a canceller."""
        if self._flag:
            callback()
            return _nothing
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(callback)

        def cancel() -> None:
            if self._callbacks is not None and callback in self._callbacks:
                self._callbacks.remove(callback)

        return cancel


def _nothing() -> None:
    return None


class LightQueue(Generic[T]):
    """An unbounded FIFO with one awaiting consumer at a time: `put_nowait`, `get`, `get_nowait`, `empty`, `qsize`
    (the part of `asyncio.Queue` that uvicorn's WebSocket protocol uses for its receive queue)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: T) -> None:
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def get_nowait(self) -> T:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None  # an idle connection keeps no deque
        return item

    async def get(self) -> T:
        while not self._items:
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            await waiter
        return self.get_nowait()
