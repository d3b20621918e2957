"""The pysignalr Python client over WebSockets against `python -m hub serve --conformance`."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from pysignalr.client import SignalRClient

from tests.support.serve import running_hub
from tests.support.timing import wait_for


def test_pysignalr_invokes_echo_and_gets_errors() -> None:
    async def main(base: str) -> tuple[Any, Any]:
        client = SignalRClient(base + "/testhub")
        opened: asyncio.Event = asyncio.Event()
        echo: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        error: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        async def on_open() -> None:
            opened.set()

        async def on_echo(message: Any) -> None:
            echo.set_result(message.result)

        async def on_error(message: Any) -> None:
            if not error.done():
                error.set_result(message.error)

        client.on_open(on_open)
        client.on_error(on_error)
        runner = asyncio.create_task(client.run())
        try:
            await wait_for(opened.wait(), 10)
            await client.send("Echo", ["héllo"], on_invocation=on_echo)  # type: ignore[list-item]
            await client.send("NoSuchMethod", [], on_invocation=on_echo)
            return await wait_for(echo, 10), await wait_for(error, 10)
        finally:
            ws = client._transport._ws  # type: ignore[attr-defined]
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner
            if ws is not None:  # cancelling pysignalr's run() leaves its socket open
                await ws.close()

    with running_hub("--conformance") as base:
        result, error = asyncio.run(main(base))
    assert result == "héllo"
    assert error == "Unknown hub method 'NoSuchMethod'"
