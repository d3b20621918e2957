"""In-process broker with the Redis broker's semantics, for one process (the default without a Redis URL).

Messages are encoded with the same codec and decoded once per delivery, so listeners see exactly what the
Redis broker would give them. Delivery is synchronous inside publish_*: no queue, hence nothing to bound.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hub.broker import codec
from hub.broker.base import (
    AUDIO_WINDOW_MS,
    AUDIOLOG_MAXLEN,
    DEFAULT_PREFIX,
    HISTORY_TTL_S,
    LOG_MAXLEN,
    ConversationListener,
    Event,
    GapListener,
    History,
    Keys,
    Listener,
    audio_frames_since,
)
from hub.broker.local import LocalListeners, LocalSubscription
from hub.broker.sessions import MemorySessionRegistry


@dataclass(slots=True)
class _Conversation:
    seq: int = 0
    log: deque[tuple[int, bytes]] = field(default_factory=deque)
    audiolog: deque[tuple[float, bytes]] = field(default_factory=deque)
    expires_at: float | None = None


class MemoryBroker:
    def __init__(self, *, prefix: str = DEFAULT_PREFIX, log_maxlen: int = LOG_MAXLEN,
                 audio_window_ms: int = AUDIO_WINDOW_MS, audiolog_maxlen: int = AUDIOLOG_MAXLEN,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.prefix = prefix
        self.keys = Keys(prefix)
        self.log_maxlen = log_maxlen
        self.audio_window_ms = audio_window_ms
        self.audiolog_maxlen = audiolog_maxlen
        self._clock = clock
        self._conversations: dict[str, _Conversation] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self.local = LocalListeners(self.keys, self)
        self.subscribed: set[str] = set()
        self.sessions = MemorySessionRegistry()  # caller sessions (hub/broker/sessions.py)

    # --- health ----------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def simulate_outage(self) -> None:
        """For tests of the hub: every listener hears on_gap("broker_outage"), as after a Redis reconnect."""
        self.local.gap("broker_outage")

    # --- Channels (LocalListeners calls these) -----------------------------------------------------------
    def want(self, channels: tuple[str, ...]) -> None:
        self.subscribed.update(channels)

    def drop(self, channels: tuple[str, ...]) -> None:
        self.subscribed.difference_update(channels)

    async def wait_subscribed(self, channels: tuple[str, ...]) -> None:
        return None

    # --- publishing --------------------------------------------------------------------------------------
    def _conversation(self, conversation_id: str, create: bool = True) -> _Conversation | None:
        conv = self._conversations.get(conversation_id)
        if conv is not None and conv.expires_at is not None and conv.expires_at <= self._clock():
            del self._conversations[conversation_id]
            conv = None
        if conv is None and create:
            conv = self._conversations[conversation_id] = _Conversation()
        return conv

    async def publish_event(self, conversation_id: str, event: Event, *, lifecycle: bool = False) -> int:
        conv = self._conversation(conversation_id)
        assert conv is not None
        conv.seq += 1
        payload = codec.encode({**{k: v for k, v in event.items() if k != "seq"}, "seq": conv.seq})
        conv.log.append((conv.seq, payload))
        while len(conv.log) > self.log_maxlen:
            conv.log.popleft()
        self.local.deliver(self.keys.events(conversation_id), lambda: codec.decode(payload))
        if lifecycle:
            self.local.deliver(self.keys.lifecycle, lambda: codec.decode(payload))
        return conv.seq

    async def publish_audio(self, conversation_id: str, frame: dict[str, Any]) -> None:
        conv = self._conversation(conversation_id)
        assert conv is not None
        payload = codec.encode(frame)
        now = self._clock()
        conv.audiolog.append((now, payload))
        horizon = now - self.audio_window_ms / 1000
        while conv.audiolog and (conv.audiolog[0][0] < horizon or len(conv.audiolog) > self.audiolog_maxlen):
            conv.audiolog.popleft()
        self.local.deliver(self.keys.audio(conversation_id), lambda: codec.decode(payload))

    async def publish_control(self, conversation_id: str, message: dict[str, Any]) -> None:
        payload = codec.encode(message)
        self.local.deliver(self.keys.control(conversation_id), lambda: codec.decode(payload))

    # --- history -----------------------------------------------------------------------------------------
    async def history(self, conversation_id: str, after_seq: int, limit: int = LOG_MAXLEN) -> History:
        conv = self._conversation(conversation_id, create=False)
        if conv is None:
            return History([], 0, False)
        start = max(after_seq + 1, conv.seq - limit + 1, 1)
        events = [codec.decode(p) for s, p in conv.log if s >= start]
        first = events[0]["seq"] if events else conv.seq + 1
        trimmed = after_seq < conv.seq and first > after_seq + 1
        return History(events, conv.seq, trimmed)

    async def last_seq(self, conversation_id: str) -> int:
        conv = self._conversation(conversation_id, create=False)
        return conv.seq if conv else 0

    async def recent_audio(self, conversation_id: str, since_ms: int) -> list[dict[str, Any]]:
        conv = self._conversation(conversation_id, create=False)
        if conv is None:
            return []
        horizon = self._clock() - self.audio_window_ms / 1000
        frames = [codec.decode(p) for t, p in reversed(conv.audiolog) if t >= horizon]
        return audio_frames_since(frames, since_ms)

    async def expire_history(self, conversation_id: str, seconds: int = HISTORY_TTL_S) -> None:
        conv = self._conversation(conversation_id, create=False)
        if conv is not None:
            conv.expires_at = self._clock() + seconds

    async def delete_history(self, conversation_id: str) -> None:
        self._conversations.pop(conversation_id, None)

    # --- subscriptions -----------------------------------------------------------------------------------
    def subscribe_conversation(self, conversation_id: str, listener: ConversationListener) -> LocalSubscription:
        return self.local.add_conversation(conversation_id, listener)

    def subscribe_lifecycle(self, listener: Listener, *, on_gap: GapListener | None = None) -> LocalSubscription:
        return self.local.add_lifecycle(listener, on_gap)

    def subscribe_control(self, conversation_id: str, listener: Listener, *,
                          on_gap: GapListener | None = None) -> LocalSubscription:
        return self.local.add_control(conversation_id, listener, on_gap)

    # --- leases ------------------------------------------------------------------------------------------
    def _holder(self, name: str) -> str | None:
        held = self._leases.get(name)
        if held is None:
            return None
        if held[1] <= self._clock():
            del self._leases[name]
            return None
        return held[0]

    async def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        if self._holder(name) is not None:
            return False
        self._leases[name] = (owner, self._clock() + ttl_s)
        return True

    async def renew_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        if self._holder(name) != owner:
            return False
        self._leases[name] = (owner, self._clock() + ttl_s)
        return True

    async def release_lease(self, name: str, owner: str) -> None:
        if self._holder(name) == owner:
            del self._leases[name]
