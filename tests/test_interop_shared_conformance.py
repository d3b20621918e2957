"""The team's shared check ../shared/checks/signalr-conformance.cjs (read-only, beside the clone) against
`serve --conformance`; its npm packages come from tests/node/node_modules through NODE_PATH."""

from __future__ import annotations

import pytest

from tests.support.node_scripts import REPO, run_node_script
from tests.support.serve import running_hub

SHARED_CHECK = REPO.parent / "shared" / "checks" / "signalr-conformance.cjs"
EXPECTED_CHECKS = 9


def test_shared_conformance_check_passes() -> None:
    if not SHARED_CHECK.is_file():
        pytest.fail(f"{SHARED_CHECK} is missing: CI keeps ../shared beside the clone")
    with running_hub("--conformance", "--drain-grace", "1") as base:
        run = run_node_script(SHARED_CHECK, base)
    assert run.failed == 0, run.output
    assert run.passed >= EXPECTED_CHECKS, run.output
