"""npm @microsoft/signalr 10.x (+ msgpack) against `serve --conformance`: accessTokenFactory and 401s, automatic
reconnect after a server Close, stateful reconnect across killed sockets (same id, no lost message), long-polling
and SSE stop, skipNegotiation, /redirect/negotiate."""

from __future__ import annotations

from tests.support.node_scripts import NODE_DIR, run_node_script
from tests.support.serve import running_hub

EXPECTED_CHECKS = 27


def test_npm_client_auth_reconnect_stop_and_redirects() -> None:
    with running_hub("--conformance", "--drain-grace", "1") as base:
        run = run_node_script(NODE_DIR / "interop_reconnect.cjs", base)
    assert run.failed == 0, run.output
    assert run.passed >= EXPECTED_CHECKS, run.output
