"""python -m hub.agent --redis-url redis://... [--prefix voicehub] [--script FILE]: the echo agent as its own process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal

from hub.agent.echo import Script, run_echo_agent
from hub.publisher import connect


async def main(redis_url: str, prefix: str, script_path: str | None = None) -> None:
    script = Script.from_file(script_path) if script_path else None
    broker = await connect(redis_url, prefix)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    ready = asyncio.Event()
    agent = asyncio.get_running_loop().create_task(run_echo_agent(broker, stop, ready, script=script))
    waiter = asyncio.ensure_future(ready.wait())
    try:
        await asyncio.wait({agent, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if ready.is_set():  # tests and scripts wait for this line
            print(f"Echo agent listening on {prefix}:conversations", flush=True)
        await agent
    finally:
        waiter.cancel()
        await broker.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m hub.agent")
    parser.add_argument("--redis-url", default=os.environ.get("VOICEHUB_REDIS_URL"))
    parser.add_argument("--prefix", default=os.environ.get("VOICEHUB_PREFIX", "voicehub"))
    parser.add_argument("--script", default=os.environ.get("VOICEHUB_AGENT_SCRIPT"),
                        help="a text file with the agent's lines, one per turn (metadata.script wins)")
    args = parser.parse_args()
    if not args.redis_url:
        parser.error("--redis-url (or VOICEHUB_REDIS_URL) is required")
    asyncio.run(main(args.redis_url, args.prefix, args.script))
