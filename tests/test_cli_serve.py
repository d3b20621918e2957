"""`python -m hub serve` starts and answers /healthz."""

from __future__ import annotations

import subprocess
import sys

import httpx

from tests.support.ports import free_port
from tests.support.timing import eventually_sync


def test_serve_answers_healthz() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False

        eventually_sync(up, 15, "the hub to answer /healthz")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").json() == {"status": "ok"}
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
