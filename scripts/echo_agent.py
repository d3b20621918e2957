#!/usr/bin/env python3
"""The reference echo agent as its own process: a thin wrapper over `python -m hub agent`.

    scripts/echo_agent.py --redis-url redis://127.0.0.1:6379/0 [--script lines.txt]

It answers every conversation that starts on the hubs sharing that Redis (see hub/agent/echo.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["agent", *sys.argv[1:]]))
