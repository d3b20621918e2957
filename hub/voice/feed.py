"""Node-level fan-out of one conversation: one broker subscription, each event encoded once.

A `ConversationFeed` exists while something on this node watches the conversation (monitor watches,
the caller's own session). Each broker event becomes one `OutgoingMessage` that every interested
connection queues without awaiting; audio is rendered once per distinct format (hub.audio.render) and
each rendered frame is encoded once for all subscribers of that format.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from hub.latency import LatencyHistogram
from hub.signalr.outbound import OutgoingMessage
from hub.voice.payloads import audio_frame, monitor_event, now_iso
from hub.voice.presence import PRESENCE_TRACK
from hub.voice.watch import Watch
from protocol import InvocationMessage

if TYPE_CHECKING:
    from hub.audio.render import ConversationAudioRenderer
    from hub.broker.base import Broker

log = logging.getLogger("hub.voice")

LEVEL_INTERVAL = 0.2
GAP_RECOVERY_WAIT = 60.0


class FeedListener(Protocol):
    """The caller's session on this node: raw broker events of its conversation."""

    def on_feed_event(self, event: dict[str, Any]) -> None: ...

    def on_feed_audio(self, frame: dict[str, Any]) -> None: ...


class ConversationFeed:
    def __init__(self, registry: FeedRegistry, conversation_id: str) -> None:
        self.registry = registry
        self.conversation_id = conversation_id
        self.watches: dict[str, Watch] = {}  # by connection id
        self.listeners: list[FeedListener] = []
        self.renderer: ConversationAudioRenderer | None = None
        self._formats_dirty = True
        self._recipients: dict[Any, list[Watch]] = {}  # audio format -> watches receiving it
        self._last_level = 0.0
        self.subscription: Any = registry.broker.subscribe_conversation(conversation_id, self)

    async def ready(self) -> None:
        """Until the broker subscription is live (events published after this are seen live)."""
        wait = getattr(self.subscription, "ready", None)
        if wait is not None:
            result = wait()
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                await result

    @property
    def empty(self) -> bool:
        return not self.watches and not self.listeners

    def formats_changed(self) -> None:
        self._formats_dirty = True

    # --- broker listener --------------------------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            try:
                listener.on_feed_event(event)
            except Exception:
                log.exception("caller session of %s failed on an event", self.conversation_id)
        mapped = monitor_event(event)
        seq = event.get("seq")
        if mapped is None or not isinstance(seq, int) or not self.watches:
            return
        target, payload = mapped
        message = OutgoingMessage(InvocationMessage(target, [payload]))
        kind = str(event.get("type"))
        is_final = bool(event.get("isFinal", True))
        for watch in list(self.watches.values()):
            watch.offer(seq, kind, is_final, message)
        self.registry.fanout_latency.observe_event(event)
        if kind == "ended":
            for watch in list(self.watches.values()):
                if watch.on_ended is not None:
                    watch.on_ended(self.conversation_id)
            self.registry.conversation_ended(self.conversation_id)

    def on_audio(self, frame: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            try:
                listener.on_feed_audio(frame)
            except Exception:
                log.exception("caller session of %s failed on audio", self.conversation_id)
        track = frame.get("track")
        if track == PRESENCE_TRACK:
            if self.registry.on_presence is not None:
                self.registry.on_presence(self.conversation_id, frame)
            return
        if not self.watches:
            return
        renderer = self._renderer()
        data = frame.get("data")
        if track not in ("caller", "agent") or not isinstance(data, bytes | bytearray | memoryview):
            return
        timestamp = int(frame.get("timestampMs") or 0)
        recipients = self._recipients
        for rendered in renderer.push(track, bytes(data), timestamp):
            fmt = rendered.format
            watches = recipients.get(fmt)
            if not watches:
                continue
            message = OutgoingMessage(InvocationMessage("AudioFrame", [audio_frame(
                self.conversation_id, fmt.track, rendered.frame, fmt.encoding, fmt.sample_rate,
                rendered.timestamp_ms, rendered.data)]))
            key = (self.conversation_id, fmt.track)
            for watch in watches:
                if watch.held is None:
                    watch.connection.send_encoded(message, drop_key=key)
        now = time.monotonic()
        if now - self._last_level >= LEVEL_INTERVAL:
            self._last_level = now
            self._send_levels(renderer)

    def _renderer(self) -> ConversationAudioRenderer:
        if self.renderer is None:
            from hub.audio.render import ConversationAudioRenderer

            self.renderer = ConversationAudioRenderer()
        if self._formats_dirty:
            recipients: dict[Any, list[Watch]] = {}
            for watch in self.watches.values():
                for fmt in watch.formats:
                    recipients.setdefault(fmt, []).append(watch)
            self.renderer.set_formats(recipients)
            self._recipients = recipients
            self._formats_dirty = False
        return self.renderer

    def _send_levels(self, renderer: ConversationAudioRenderer) -> None:
        watchers = [w for w in self.watches.values() if w.wants_levels and w.held is None]
        if not watchers:
            return
        caller, agent = renderer.levels()
        message = OutgoingMessage(InvocationMessage("AudioLevel", [{
            "conversationId": self.conversation_id, "caller": round(caller, 1), "agent": round(agent, 1),
            "timestamp": now_iso()}]))
        for watch in watchers:
            watch.connection.send_encoded(message, drop_key=(self.conversation_id, "level"))

    def on_gap(self, reason: str) -> None:
        """The broker may have lost events: once it is back, tell each watch which seqs it missed (from what it had
        when the gap was noticed: live events that arrive meanwhile must not hide the hole) and let the caller's
        session catch up."""
        for listener in list(self.listeners):
            on_feed_gap = getattr(listener, "on_feed_gap", None)
            if on_feed_gap is not None:
                on_feed_gap(reason)
        if self.watches:
            marks = {connection_id: watch.last_seq for connection_id, watch in self.watches.items()}
            self.registry.spawn(self._report_gap(reason, marks))

    async def _report_gap(self, reason: str, marks: dict[str, int]) -> None:
        broker = self.registry.broker
        deadline = time.monotonic() + GAP_RECOVERY_WAIT
        last = -1
        delay = 0.2
        while time.monotonic() < deadline:
            try:
                last = await broker.last_seq(self.conversation_id)
                break
            except Exception:
                await asyncio.sleep(delay)  # the broker is still down: back off and ask again
                delay = min(delay * 2, 5.0)
        if last < 0:
            log.warning("conversation %s: broker still unavailable, Gap without an upper bound", self.conversation_id)
        for connection_id, watch in list(self.watches.items()):
            mark = marks.get(connection_id, watch.last_seq)
            if last < 0 or last > mark:
                watch.send_gap(mark + 1, last, reason)

    def close(self) -> None:
        close = getattr(self.subscription, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                self.registry.spawn(result)


class FeedRegistry:
    """This node's feeds, created on first interest and closed when the last watcher leaves."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.feeds: dict[str, ConversationFeed] = {}
        self.fanout_latency = LatencyHistogram()  # publish -> queued for every subscriber here (/metrics)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.on_conversation_ended: list[Callable[[str], None]] = []
        self.on_presence: Callable[[str, dict[str, Any]], None] | None = None  # presence frames of other nodes

    def feed(self, conversation_id: str) -> ConversationFeed:
        feed = self.feeds.get(conversation_id)
        if feed is None:
            feed = self.feeds[conversation_id] = ConversationFeed(self, conversation_id)
        return feed

    def release(self, conversation_id: str) -> None:
        feed = self.feeds.get(conversation_id)
        if feed is not None and feed.empty:
            del self.feeds[conversation_id]
            feed.close()

    def conversation_ended(self, conversation_id: str) -> None:
        for callback in list(self.on_conversation_ended):
            callback(conversation_id)

    def spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for feed in list(self.feeds.values()):
            feed.close()
        self.feeds.clear()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
