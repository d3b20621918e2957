"""Long fuzzing campaign: the CI hypothesis fuzz tests (every hub method's arguments; negotiate, handshakes and frames
on both codecs) with `--scale` times more generated cases each, on real hub processes. Prints each test's case counts and
the verdict; stops by itself.

    .venv/bin/python scripts/soak_fuzz.py [--scale 20]

The generation is deterministic per scale (hypothesis `derandomize`), so a failure is reproduced by running the same
command again; the failing input is printed by hypothesis.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/test_fuzz_hub_methods.py", "tests/test_fuzz_protocol.py"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=20, help="times the CI number of cases (CI: 1)")
    args = parser.parse_args()
    env = {**os.environ, "VOICEHUB_FUZZ_SCALE": str(args.scale)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *TESTS], cwd=ROOT,
                            env=env, timeout=6 * 3600)
    print("RESULT: " + ("PASS, no undocumented answer and no traceback" if result.returncode == 0 else "FAIL"))
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
