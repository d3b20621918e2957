"""Settings of one hub endpoint, with ASP.NET Core's defaults (signalr-protocol.md 1.10 and 1.13)."""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.codec import DEFAULT_MAX_MESSAGE_SIZE
from protocol.negotiate import ALL_TRANSPORTS, Transport
from protocol.stateful import DEFAULT_BUFFER_SIZE


@dataclass
class HubOptions:
    transports: tuple[Transport, ...] = ALL_TRANSPORTS
    detailed_errors: bool = False
    keep_alive: float = 15.0  # seconds of silence before the server sends a Ping (0: off)
    client_timeout: float = 30.0  # close when nothing came for this long, once the client has pinged (0: off)
    handshake_timeout: float = 15.0
    disconnect_timeout: float = 15.0  # inactive connections (never connected, between polls, awaiting a reconnect)
    poll_timeout: float = 90.0  # a long poll with nothing to send answers an empty 200 after this long
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_queued_bytes: int = 1_000_000  # never-dropped frames waiting for one slow client before it is closed
    max_droppable_frames: int = 25  # droppable frames (audio) waiting per drop key before the oldest goes
    allow_stateful_reconnect: bool = True
    stateful_buffer_bytes: int = DEFAULT_BUFFER_SIZE
    heartbeat_interval: float = 1.0  # timers (keep-alive, timeouts, acks, reaping) are checked this often
    max_connections: int = 10_000
    max_pending_negotiations: int = 10_000
    extra: dict[str, object] = field(default_factory=dict)
