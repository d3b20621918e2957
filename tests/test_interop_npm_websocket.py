"""The official npm SignalR client (JSON and MessagePack) over WebSockets against `python -m hub serve --conformance`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.ports import free_port
from tests.support.timing import eventually_sync, scaled

NODE_DIR = Path(__file__).parent / "node"


def test_npm_client_over_websockets() -> None:
    assert (NODE_DIR / "node_modules" / "@microsoft" / "signalr").is_dir(), "run ./scripts/install --test first"
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "hub", "serve", "--port", str(port), "--conformance"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False

        eventually_sync(up, 15, "the hub to start")
        run = subprocess.run(["node", str(NODE_DIR / "websocket_smoke.cjs")], capture_output=True, text=True,
                             timeout=scaled(60), env={**os.environ, "BASE": f"http://127.0.0.1:{port}"})
        summary = re.search(r"^(\d+) passed, (\d+) failed$", run.stdout, re.M)
        assert summary is not None, run.stdout + run.stderr
        assert summary.group(2) == "0" and int(summary.group(1)) >= 2, run.stdout
    finally:
        server.terminate()
        server.wait(10)
