"""Who watches which conversation, on every node (GetPresence, Presence).

Each node knows its own watchers and shares them as soft state: on every change, and every ANNOUNCE_SECONDS while
it has watchers, it publishes its list on the conversation's audio channel as a frame with `track: "presence"`
(every node that watches the conversation already listens there; pipelines only take `caller` frames, the hub
only `caller`/`agent` audio). Other nodes keep each node's list until EXPIRES_SECONDS without news, so a node
that dies without a word drops out by itself. A node that starts watching a conversation says `hello`, and the
nodes already watching it answer with their lists at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.broker.base import Broker

log = logging.getLogger("hub.voice")

PRESENCE_TRACK = "presence"
ANNOUNCE_SECONDS = 20.0
EXPIRES_SECONDS = 60.0

Entry = dict[str, Any]


class Presence:
    def __init__(self, broker: Broker | None = None, node_id: str | None = None) -> None:
        self.broker = broker
        self.node_id = node_id or secrets.token_hex(6)
        self.watchers: dict[str, dict[str, Entry]] = {}  # this node: conversation -> connection id -> entry
        self.remote: dict[str, dict[str, tuple[float, list[Entry]]]] = {}  # conversation -> node -> (expiry, entries)
        self.on_change: Callable[[str], None] | None = None  # another node's list changed: send Presence
        self.listening: Callable[[str], Awaitable[None]] | None = None  # until this node hears the conversation
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refresher: asyncio.Task[None] | None = None

    # --- this node's watchers ----------------------------------------------------------------------
    def add(self, conversation_id: str, connection_id: str, entry: Entry) -> bool:
        current = self.watchers.setdefault(conversation_id, {})
        first = not current
        changed = current.get(connection_id) != entry
        current[connection_id] = entry
        if changed:
            self._announce(conversation_id, hello=first)
        return changed

    def remove(self, conversation_id: str, connection_id: str) -> bool:
        current = self.watchers.get(conversation_id)
        if current is None or connection_id not in current:
            return False
        del current[connection_id]
        if not current:
            del self.watchers[conversation_id]
            self.remote.pop(conversation_id, None)  # this node stops hearing about it
        self._announce(conversation_id)
        return True

    def of(self, conversation_id: str) -> list[Entry]:
        """Every watcher of the conversation: this node's, then the other nodes' still fresh."""
        out = list(self.watchers.get(conversation_id, {}).values())
        now = time.monotonic()
        for expires, entries in self.remote.get(conversation_id, {}).values():
            if expires > now:
                out += entries
        return out

    # --- the other nodes ---------------------------------------------------------------------------
    def on_frame(self, conversation_id: str, frame: dict[str, Any]) -> None:
        """A presence frame from the conversation's audio channel."""
        node = frame.get("node")
        if not isinstance(node, str) or node == self.node_id or conversation_id not in self.watchers:
            return
        raw = frame.get("watchers")
        entries = [dict(e) for e in raw if isinstance(e, dict)] if isinstance(raw, list) else []
        nodes = self.remote.setdefault(conversation_id, {})
        before = nodes.get(node)
        if entries:
            nodes[node] = (time.monotonic() + EXPIRES_SECONDS, entries)
        else:
            nodes.pop(node, None)
        if frame.get("hello"):
            self._announce(conversation_id)  # tell the newcomer who watches here
        if (before[1] if before else []) != entries and self.on_change is not None:
            self.on_change(conversation_id)

    def _announce(self, conversation_id: str, *, hello: bool = False) -> None:
        if self.broker is None:
            return
        frame = {"conversationId": conversation_id, "track": PRESENCE_TRACK, "node": self.node_id,
                 "watchers": list(self.watchers.get(conversation_id, {}).values()), "hello": hello,
                 "timestampMs": 0}
        self._spawn(self._publish(conversation_id, frame, hello))
        if self._refresher is None and self.watchers:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh())

    async def _publish(self, conversation_id: str, frame: dict[str, Any], hello: bool) -> None:
        assert self.broker is not None
        try:
            if hello and self.listening is not None:
                await self.listening(conversation_id)  # or the answers to the hello would go unheard
            await self.broker.publish_audio(conversation_id, frame)
        except Exception as exc:  # the next announcement repairs it
            log.warning("presence of %s not shared: %s", conversation_id, exc)

    async def _refresh(self) -> None:
        """Re-announce this node's lists and drop other nodes' lists that went stale."""
        while True:
            await asyncio.sleep(ANNOUNCE_SECONDS)
            for conversation_id in list(self.watchers):
                self._announce(conversation_id)
            now = time.monotonic()
            for conversation_id, nodes in list(self.remote.items()):
                stale = [node for node, (expires, _) in nodes.items() if expires <= now]
                for node in stale:
                    del nodes[node]
                if stale and self.on_change is not None:
                    self.on_change(conversation_id)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def snapshot(self, conversation_id: str) -> list[Entry]:
        """`of`, also for a conversation this node does not watch: then from the presence frames among the
        conversation's recent audio (the audiolog keeps the last minute, announcements come every 20 s)."""
        if conversation_id in self.watchers or self.broker is None:
            return self.of(conversation_id)
        try:
            frames = await self.broker.recent_audio(conversation_id, 0)
        except Exception:
            return []
        latest: dict[str, list[Entry]] = {}
        for frame in frames:  # oldest first: the last frame of each node wins
            node = frame.get("node")
            if frame.get("track") == PRESENCE_TRACK and isinstance(node, str) and isinstance(frame.get("watchers"), list):
                latest[node] = [dict(e) for e in frame["watchers"] if isinstance(e, dict)]
        return [entry for entries in latest.values() for entry in entries]

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        if self._tasks:  # the last announcements (connections closed by the drain) go out first
            await asyncio.wait(list(self._tasks), timeout=1.0)
        tasks = [t for t in (self._refresher, *self._tasks) if t is not None]
        self._refresher = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
