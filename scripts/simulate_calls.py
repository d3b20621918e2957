#!/usr/bin/env python3
"""Simulated callers with a progress display: a thin wrapper over `python -m hub simulate`.

    scripts/simulate_calls.py --url http://127.0.0.1:8000 --key vsnp_live_... --calls 5 [--duration 20]

As a library (tests): `hub.simulate.callers.simulate_call` / `simulate_calls`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["simulate", *sys.argv[1:]]))
