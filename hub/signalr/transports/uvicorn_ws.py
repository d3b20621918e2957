"""uvicorn's websockets-sansio WebSocket protocol with a smaller idle footprint (`python -m hub serve` uses it).

Same behaviour, less kept per idle connection (about 6 KB):
- the ASGI receive queue and the `writable` flag are the on-demand versions from `hub.signalr.light` instead of an
  `asyncio.Queue` and an `asyncio.Event`;
- once the upgrade request is handled, the frame parser is restarted without the handshake parser's frame, which
  otherwise keeps the parsed HTTP request (every header) alive for the life of the socket.
Run the app under plain uvicorn with `--ws hub.signalr.transports.uvicorn_ws:LeanWebSocketProtocol` to get it
there too; the hub works with any uvicorn WebSocket implementation.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import Protocol

from hub.signalr.light import LightEvent, LightQueue


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = LightQueue()  # type: ignore[assignment]
        writable = LightEvent()
        writable.set()
        self.writable = writable  # type: ignore[assignment]

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        _restart_frame_parser(self.conn)


def _restart_frame_parser(conn: Protocol) -> None:
    """Swap websockets' server parser (handshake, then frames) for a fresh frame parser, only when the old one
    waits between frames with nothing buffered: the two are then in the same state, minus the request it holds."""
    old: Generator[None, None, None] = conn.parser
    frames = getattr(old, "gi_yieldfrom", None)  # ServerProtocol.parse delegates to Protocol.parse
    waiting = getattr(frames, "gi_yieldfrom", None)
    if (getattr(getattr(frames, "gi_code", None), "co_name", "") != "parse"
            or getattr(getattr(waiting, "gi_code", None), "co_name", "") != "at_eof"
            or conn.reader.buffer or conn.reader.eof):
        return
    fresh = Protocol.parse(conn)
    next(fresh)  # runs to its first wait: at_eof with an empty buffer
    conn.parser = fresh
    old.close()
