"""`python -m hub serve` as a real subprocess on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.support.ports import free_port
from tests.support.timing import eventually_sync


@contextmanager
def running_hub(*args: str) -> Iterator[str]:
    """Start the hub with extra CLI args; yield its base URL once /healthz answers; stop it after."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hub", "serve", "--port", str(port), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(base + "/healthz", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        eventually_sync(up, 15, "the hub to answer /healthz")
        yield base
    finally:
        proc.terminate()
        proc.wait(10)
