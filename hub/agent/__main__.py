"""python -m hub.agent --redis-url redis://... [--prefix voicehub]: the echo agent as its own process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal

from hub.agent.echo import run_echo_agent
from hub.publisher import connect


async def main(redis_url: str, prefix: str) -> None:
    broker = await connect(redis_url, prefix)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await run_echo_agent(broker, stop)
    finally:
        await broker.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m hub.agent")
    parser.add_argument("--redis-url", default=os.environ.get("VOICEHUB_REDIS_URL"))
    parser.add_argument("--prefix", default=os.environ.get("VOICEHUB_PREFIX", "voicehub"))
    args = parser.parse_args()
    if not args.redis_url:
        parser.error("--redis-url (or VOICEHUB_REDIS_URL) is required")
    asyncio.run(main(args.redis_url, args.prefix))
