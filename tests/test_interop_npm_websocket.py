"""The official npm SignalR client (JSON and MessagePack) over WebSockets against `python -m hub serve --conformance`."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.support.serve import running_hub
from tests.support.timing import scaled

NODE_DIR = Path(__file__).parent / "node"


def test_npm_client_over_websockets() -> None:
    assert (NODE_DIR / "node_modules" / "@microsoft" / "signalr").is_dir(), "run ./scripts/install --test first"
    with running_hub("--conformance") as base:
        run = subprocess.run(["node", str(NODE_DIR / "websocket_smoke.cjs")], capture_output=True, text=True,
                             timeout=scaled(60), env={**os.environ, "BASE": base})
    summary = re.search(r"^(\d+) passed, (\d+) failed$", run.stdout, re.M)
    assert summary is not None, run.stdout + run.stderr
    assert summary.group(2) == "0" and int(summary.group(1)) >= 2, run.stdout
