"""Slow-header (slowloris) protection for uvicorn's HTTP/1.1 protocol.

uvicorn closes idle keep-alive connections, but a connection that opens and sends nothing, or sends a request's
headers a byte at a time, is held forever: a few thousand of them exhaust a node's file descriptors. This protocol
gives every request `header_timeout` seconds from its first byte (or from the connection's opening) to complete its
headers; past that, a connection that serves no request is closed. WebSocket upgrades are covered until their
headers are complete; the SignalR handshake timeout covers them afterwards (docs/operations.md).

It extends uvicorn's httptools protocol (installed with uvicorn[standard]); without httptools, uvicorn's default
protocol is used and the protection is off (a warning says so).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("hub")

DEFAULT_HEADER_TIMEOUT = 10.0


def header_timeout_protocol(seconds: float = DEFAULT_HEADER_TIMEOUT) -> Any:
    """A uvicorn `http` protocol class with the header timeout, or "auto" when httptools is missing."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        log.warning("httptools is not installed: no header timeout (slowloris protection is off)")
        return "auto"

    class HeaderTimeoutProtocol(HttpToolsProtocol):
        header_timeout: float = seconds
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:
                self._arm()  # the next request on a keep-alive connection

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(self.header_timeout, self._expired)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expired(self) -> None:
            self._header_timer = None
            if self.cycle is None or self.cycle.response_complete:  # no request is being served
                self.transport.close()

    return HeaderTimeoutProtocol
