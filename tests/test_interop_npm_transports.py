"""npm @microsoft/signalr 10.x (+ msgpack) on every transport x protocol against `serve --conformance`:
invoke/send, server->client calls, error texts, streams with cancellation, uploads, client results, groups."""

from __future__ import annotations

from tests.support.node_scripts import NODE_DIR, run_node_script
from tests.support.serve import running_hub

EXPECTED_CHECKS = 33


def test_npm_client_on_every_transport_and_protocol() -> None:
    with running_hub("--conformance", "--drain-grace", "1") as base:
        run = run_node_script(NODE_DIR / "interop_transports.cjs", base)
    assert run.failed == 0, run.output
    assert run.passed >= EXPECTED_CHECKS, run.output
