"""`serve --demo N`: N simulated callers in-process, again and again, so the dashboard shows live calls."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from hub.auth.principal import DEFAULT_TENANT, Principal
from hub.simulate.callers import simulate_call

log = logging.getLogger("hub.simulate")

DEMO_CALL_SECONDS = 30.0
RETRY_SECONDS = 2.0


async def run_demo(runtime: Any, calls: int) -> None:
    """Runs until cancelled. Callers connect to this process over loopback like any client."""
    config = runtime.config
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::", "") else config.host
    base = f"http://{host}:{config.port}"
    principal = Principal("demo", DEFAULT_TENANT, frozenset({"voice:session"}), method="jwt")

    async def caller(index: int) -> None:
        await asyncio.sleep(1.0 + index * (DEMO_CALL_SECONDS / max(1, calls)))  # spread start and end times
        round_ = 0
        while True:
            token = runtime.tokens.issue(principal, 3600)
            result = await simulate_call(base, token, duration=DEMO_CALL_SECONDS, agent_id=f"agt_demo{index % 3}",
                                         metadata={"demo": True, "channel": "webrtc"}, index=index + round_)
            round_ += 1
            if result.error:
                log.warning("demo caller %d: %s", index, result.error)
                await asyncio.sleep(RETRY_SECONDS)

    await asyncio.gather(*(caller(i) for i in range(calls)))
