"""`python -m hub serve` starts and answers /healthz."""

from __future__ import annotations

import httpx

from tests.support.serve import running_hub


def test_serve_answers_healthz() -> None:
    with running_hub() as base:
        assert httpx.get(base + "/healthz").json() == {"status": "ok"}
