"""Run one of the tests/node interop scripts against a hub and read its "N passed, N failed" line."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.timing import TIME_SCALE, scaled

REPO = Path(__file__).resolve().parents[2]
NODE_DIR = REPO / "tests" / "node"
NODE_MODULES = NODE_DIR / "node_modules"


@dataclass(frozen=True)
class NodeRun:
    passed: int
    failed: int
    output: str


def run_node_script(script: Path, base: str, *, seconds: float = 60) -> NodeRun:
    """Run `node script` with BASE=base and the SignalR npm packages of tests/node on NODE_PATH."""
    assert (NODE_MODULES / "@microsoft" / "signalr").is_dir(), "run ./scripts/install --test first (npm packages)"
    env = {
        **os.environ,
        "BASE": base,
        "NODE_PATH": str(NODE_MODULES),
        "CHECK_SECONDS": str(10 * TIME_SCALE),
    }
    run = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=scaled(seconds), env=env,
                         cwd=NODE_DIR)
    output = run.stdout + run.stderr
    summary = re.search(r"^(\d+) passed, (\d+) failed$", run.stdout, re.M)
    assert summary is not None, output
    passed, failed = int(summary.group(1)), int(summary.group(2))
    assert (run.returncode == 0) == (failed == 0), output
    return NodeRun(passed, failed, output)
