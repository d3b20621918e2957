"""Client-to-server upload streams: what a hub method parameter annotated `UploadStream[T]` receives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

from hub.signalr.hub import HubError

T = TypeVar("T")

STREAM_BUFFER_CAPACITY = 10
"""`HubOptions.StreamBufferCapacity`: items buffered per upload before the connection's reads wait."""

_END = object()


class UploadStream(Generic[T]):
    """An async iterator of the items a client streams; raises HubError if the client completes with an error."""

    def __init__(self, capacity: int = STREAM_BUFFER_CAPACITY) -> None:
        self._items: asyncio.Queue[object] = asyncio.Queue(capacity)
        self._error: str | None = None
        self.done = False

    async def push(self, item: object) -> None:
        if not self.done:
            await self._items.put(item)

    def complete(self, error: str | None = None) -> None:
        if self.done:
            return
        self.done = True
        self._error = error
        try:
            self._items.put_nowait(_END)
        except asyncio.QueueFull:
            # The reader is behind: the end marker goes in once it catches up.
            asyncio.get_running_loop().create_task(self._items.put(_END))

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            item = await self._items.get()
            if item is _END:
                if self._error is not None:
                    raise HubError(self._error)
                return
            yield item  # type: ignore[misc]
