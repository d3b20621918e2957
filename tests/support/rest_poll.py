"""Poll a REST resource until it answers 200 with a body that is ready (bounded by the time scale)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.timing import wait_for


async def get_when(http: httpx.AsyncClient, path: str, ready: Callable[[dict[str, Any]], bool] | None = None,
                   seconds: float = 15, every: float = 0.05) -> dict[str, Any]:
    """GET `path` until it answers 200 and `ready(body)` holds (any 200 body without `ready`); return the body."""

    async def loop() -> dict[str, Any]:
        while True:
            answer = await http.get(path)
            if answer.status_code == 200:
                body: dict[str, Any] = answer.json()
                if ready is None or ready(body):
                    return body
            await asyncio.sleep(every)

    return await wait_for(loop(), seconds)
