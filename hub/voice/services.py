"""What VoiceHub connections share on one node: store, broker, tokens, feeds, sessions, presence."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hub.signalr.outbound import OutgoingMessage
from hub.voice.feed import FeedRegistry
from hub.voice.presence import Presence
from hub.voice.sessions import SessionKeeper
from protocol import InvocationMessage

if TYPE_CHECKING:
    from hub.auth.tokens import TokenService
    from hub.broker.base import Broker
    from hub.store.base import ConversationStore
    from hub.voice.caller import CallerSession
    from hub.voice.monitor import MonitorState

log = logging.getLogger("hub.voice")


def _env_seconds(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


@dataclass
class VoiceSettings:
    # RequestReconnectionAsync (and a drain): how long a session survives a disconnect (VOICEHUB_RESUME_WINDOW)
    resume_window: float = field(default_factory=lambda: _env_seconds("VOICEHUB_RESUME_WINDOW", 30.0))
    # ownership lease of a caller session, renewed every third of it (VOICEHUB_SESSION_LEASE); a session whose
    # owner stopped renewing is ended by a sweep one more lease later unless resumed (docs/voicehub.md)
    session_lease_seconds: float = field(default_factory=lambda: _env_seconds("VOICEHUB_SESSION_LEASE", 10.0))
    session_sweep_seconds: float = 1.0  # how often each node looks for sessions to end
    max_audio_bytes_per_second: int = 96_000  # caller audio: 3x real time of PCM16 16 kHz, then rate_limited
    max_subscriptions: int = 200  # conversations one monitor connection may watch
    max_subscriptions_per_tenant: int = 5_000  # conversation watches of one tenant's monitors on this node
    max_whisper_chars: int = 2000
    queued_agent_audio_frames: int = 1500  # 30 s of agent audio kept for a detached, resumable session
    barge_lease_seconds: float = 60.0
    data_dir: str = "data"
    recordings: bool = True


class VoiceServices:
    def __init__(self, store: ConversationStore, broker: Broker, tokens: TokenService,
                 settings: VoiceSettings | None = None, *, on_recording: Callable[..., Any] | None = None) -> None:
        self.store = store
        self.broker = broker
        self.tokens = tokens
        self.settings = settings or VoiceSettings()
        self.feeds = FeedRegistry(broker)
        self.sessions: dict[str, CallerSession] = {}  # by session id
        self.ended_sessions: set[CallerSession] = set()  # still storing late cost/analysis events
        self.monitors: set[MonitorState] = set()
        self.keeper = SessionKeeper(self)  # caller sessions across nodes
        self.presence = Presence(broker, getattr(broker, "node_id", None))
        self.presence.on_change = self.send_presence
        self.feeds.on_presence = self.presence.on_frame
        self.presence.listening = self._listening
        self.watches_by_tenant: dict[str, int] = {}  # conversation watches per tenant on this node (limit)
        self.barges: dict[str, tuple[str, str]] = {}  # conversation -> (connection id, user) held on this node
        self._lifecycle: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self) -> None:
        """In the running loop, once the broker started: renewal of this node's session leases and the sweep."""
        self.keeper.start()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    # --- SubscribeAll: one lifecycle subscription per node ------------------------------------------
    def add_monitor_all(self, monitor: MonitorState) -> None:
        self.monitors.add(monitor)
        if self._lifecycle is None:
            self._lifecycle = self.broker.subscribe_lifecycle(self._on_lifecycle)

    def remove_monitor_all(self, monitor: MonitorState) -> None:
        self.monitors.discard(monitor)
        if not self.monitors and self._lifecycle is not None:
            close = getattr(self._lifecycle, "close", None)
            self._lifecycle = None
            if close is not None:
                result = close()
                if asyncio.iscoroutine(result):
                    self.spawn(result)

    async def _listening(self, conversation_id: str) -> None:
        feed = self.feeds.feeds.get(conversation_id)
        if feed is not None:
            await feed.ready()

    def send_presence(self, conversation_id: str) -> None:
        """`Presence` to this node's explicit subscribers of the conversation (one message, encoded once)."""
        feed = self.feeds.feeds.get(conversation_id)
        if feed is None or not feed.watches:
            return
        message = OutgoingMessage(InvocationMessage("Presence", [{
            "conversationId": conversation_id, "watchers": self.presence.of(conversation_id)}]))
        for watch in feed.watches.values():
            if watch.options is not None:  # not SubscribeAll-only watchers (docs/operations.md)
                watch.connection.send_encoded(message)

    def _on_lifecycle(self, event: dict[str, Any]) -> None:
        for monitor in list(self.monitors):
            try:
                monitor.on_lifecycle(event)
            except Exception:
                log.exception("lifecycle event for a monitor failed")

    async def close(self) -> None:
        await self.keeper.close()
        for session in list(self.sessions.values()):
            with contextlib.suppress(Exception):
                await session.shutdown()
        for session in list(self.ended_sessions):
            session.release_feed()
        await self.presence.close()
        await self.feeds.close()
        if self._tasks:  # let recordings finish encoding and final writes land before cancelling the rest
            await asyncio.wait(list(self._tasks), timeout=10)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
