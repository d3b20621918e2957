"""The Broker interface (voicehub-contract.md section 4): event history with one seq counter, live pub/sub, leases.

Both brokers (memory.py, redis_broker.py) implement it with the same semantics. Events and frames are dicts with
the contract's camelCase keys; listeners receive one decoded dict shared by every local listener: do not mutate it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Event = dict[str, Any]
Listener = Callable[[dict[str, Any]], None]
GapListener = Callable[[str], None]

DEFAULT_PREFIX = "voicehub"
LOG_MAXLEN = 10_000
"""History entries kept per conversation (approximately: Redis trims whole stream nodes, MAXLEN ~)."""
AUDIO_WINDOW_MS = 60_000
"""The audiolog keeps about the last 60 s of frames (by arrival time) ..."""
AUDIOLOG_MAXLEN = 6_000
"""... and never more than 60 s x 50 frames/s x 2 tracks entries, however fast frames arrive."""
HISTORY_TTL_S = 86_400
"""History is kept 24 h after the end of a conversation."""
BROKER_OUTAGE = "broker_outage"
"""on_gap reason: the connection to Redis broke or went deaf; live messages may have been lost."""


class BrokerUnavailable(Exception):
    """Redis did not answer (refused, timed out, or the reply was an error): nothing was published."""


@dataclass(slots=True)
class History:
    events: list[Event] = field(default_factory=list)
    """Events with seq > after_seq, oldest first, at most `limit` (the newest ones if more exist)."""
    last_seq: int = 0
    """The conversation's counter when history was read: every event up to it is in `events` or lost."""
    trimmed: bool = False
    """True when events between after_seq and the first of `events` (or last_seq) are no longer available."""


class ConversationListener(Protocol):
    """Called synchronously by the broker's reader for each message; must not block."""

    def on_event(self, event: Event) -> None: ...

    def on_audio(self, frame: dict[str, Any]) -> None: ...

    def on_gap(self, reason: str) -> None: ...


@runtime_checkable
class Subscription(Protocol):
    def close(self) -> None:
        """Stop delivery at once (sync, idempotent); the Redis UNSUBSCRIBE follows in the background."""

    async def ready(self) -> None:
        """Return once Redis confirmed the subscription: everything published afterwards is delivered live.

        Raises BrokerUnavailable if that does not happen within the broker's `subscribe_timeout`.
        """


class Broker(Protocol):
    prefix: str

    @property
    def ready(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish_event(self, conversation_id: str, event: Event, *, lifecycle: bool = False) -> int: ...

    async def publish_audio(self, conversation_id: str, frame: dict[str, Any]) -> None: ...

    async def publish_control(self, conversation_id: str, message: dict[str, Any]) -> None: ...

    async def history(self, conversation_id: str, after_seq: int, limit: int = LOG_MAXLEN) -> History: ...

    async def last_seq(self, conversation_id: str) -> int: ...

    async def recent_audio(self, conversation_id: str, since_ms: int) -> list[dict[str, Any]]: ...

    def subscribe_conversation(self, conversation_id: str, listener: ConversationListener) -> Subscription: ...

    def subscribe_lifecycle(self, listener: Listener, *, on_gap: GapListener | None = None) -> Subscription: ...

    def subscribe_control(self, conversation_id: str, listener: Listener, *,
                          on_gap: GapListener | None = None) -> Subscription: ...

    async def expire_history(self, conversation_id: str, seconds: int = HISTORY_TTL_S) -> None: ...

    async def delete_history(self, conversation_id: str) -> None: ...

    async def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool: ...

    async def renew_lease(self, name: str, owner: str, ttl_s: float) -> bool: ...

    async def release_lease(self, name: str, owner: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Keys:
    """Every Redis key and channel name, in one place (docs/broker.md has the table)."""

    prefix: str = DEFAULT_PREFIX

    def seq(self, conversation_id: str) -> str:
        return f"{self.prefix}:conv:{conversation_id}:seq"

    def log(self, conversation_id: str) -> str:
        return f"{self.prefix}:conv:{conversation_id}:log"

    def audiolog(self, conversation_id: str) -> str:
        return f"{self.prefix}:conv:{conversation_id}:audiolog"

    def events(self, conversation_id: str) -> str:
        return f"{self.prefix}:conv:{conversation_id}:events"

    def audio(self, conversation_id: str) -> str:
        return f"{self.prefix}:conv:{conversation_id}:audio"

    def control(self, conversation_id: str) -> str:
        return f"{self.prefix}:conv:{conversation_id}:control"

    @property
    def lifecycle(self) -> str:
        return f"{self.prefix}:conversations"

    def heartbeat(self, node_id: str) -> str:
        return f"{self.prefix}:heartbeat:{node_id}"

    def lease(self, name: str) -> str:
        return f"{self.prefix}:lease:{name}"

    def history_keys(self, conversation_id: str) -> tuple[str, str, str]:
        return self.seq(conversation_id), self.log(conversation_id), self.audiolog(conversation_id)


def audio_frames_since(frames_newest_first: list[dict[str, Any]], since_ms: int) -> list[dict[str, Any]]:
    """Frames with timestampMs >= since_ms, oldest first."""
    kept = [f for f in frames_newest_first if int(f.get("timestampMs") or 0) >= since_ms]
    kept.reverse()
    return kept
