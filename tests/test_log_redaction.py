"""Tokens never reach a log line: the access log of a real hub process shows `access_token=***`."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import httpx

from hub.logredact import RedactTokens, redact
from tests.support.ports import free_port
from tests.support.timing import eventually_sync


def test_redact_hides_token_query_values_and_bearer_headers() -> None:
    line = '127.0.0.1 - "GET /hubs/voice?id=abc&access_token=eyJ.x.y HTTP/1.1" Authorization: Bearer vsnp_live_abc'
    out = redact(line)
    assert "eyJ.x.y" not in out and "vsnp_live_abc" not in out
    assert "id=abc" in out and "access_token=***" in out and "Bearer ***" in out


def test_filter_rewrites_record_arguments() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s"',
                               ("127.0.0.1", "GET", "/x?access_token=secret123&a=1"), None)
    assert RedactTokens().filter(record)
    assert "secret123" not in record.getMessage() and "a=1" in record.getMessage()


def test_hub_access_log_never_shows_a_token(tmp_path: Path) -> None:
    secret = "eyJhbGciOiJIUzI1NiJ9.leak-me.signature"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "hub.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "hub", "serve", "--port", str(port), "--data-dir", str(tmp_path)],
                                stdout=log_file, stderr=subprocess.STDOUT)
        try:
            with httpx.Client(timeout=5) as client:
                def up() -> bool:
                    try:
                        return client.get(base + "/healthz").status_code == 200
                    except httpx.HTTPError:
                        return False

                eventually_sync(up, 15, "the hub to answer /healthz")
                answer = client.post(f"{base}/hubs/voice/negotiate?negotiateVersion=1&access_token={secret}")
                assert answer.status_code == 401
                eventually_sync(lambda: "/hubs/voice/negotiate" in log_path.read_text(), 5, "the access log line")
        finally:
            proc.terminate()
            proc.wait(10)
    text = log_path.read_text()
    assert "access_token=***" in text and secret not in text and "leak-me" not in text
