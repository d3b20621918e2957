"""This process's listeners, reference-counted per Redis channel, and the sync fan-out to them.

A channel is subscribed when its first local listener arrives and unsubscribed when the last one leaves
(`Channels.want` / `Channels.drop`, implemented by each broker). Delivery calls every listener in turn without
awaiting; a listener that raises is logged and the others still get the message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hub.broker.base import ConversationListener, GapListener, Keys, Listener

log = logging.getLogger("hub.broker")


class Channels(Protocol):
    def want(self, channels: tuple[str, ...]) -> None: ...

    def drop(self, channels: tuple[str, ...]) -> None: ...

    async def wait_subscribed(self, channels: tuple[str, ...]) -> None: ...


@dataclass(eq=False, slots=True)
class LocalSubscription:
    """Returned by subscribe_*: close() is sync and idempotent; `await ready()` waits for Redis to confirm."""

    _registry: LocalListeners
    _group: _Group
    _member: Any
    channels: tuple[str, ...]
    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._registry.remove(self._group, self._member)

    async def ready(self) -> None:
        await self._registry.channels.wait_subscribed(self.channels)


@dataclass(eq=False, slots=True)
class _Callbacks:
    """A plain-callable listener (lifecycle, control) with its optional gap callback."""

    listener: Listener
    on_gap: GapListener | None = None


@dataclass(eq=False, slots=True)
class _Group:
    key: tuple[str, str]
    channels: tuple[str, ...]
    members: list[Any] = field(default_factory=list)


class LocalListeners:
    def __init__(self, keys: Keys, channels: Channels) -> None:
        self.keys = keys
        self.channels = channels
        self._groups: dict[tuple[str, str], _Group] = {}
        self._by_channel: dict[str, tuple[str, _Group]] = {}  # channel -> (kind, group)

    # --- registration ----------------------------------------------------------------------------------
    def add_conversation(self, conversation_id: str, listener: ConversationListener) -> LocalSubscription:
        channels = (self.keys.events(conversation_id), self.keys.audio(conversation_id))
        return self._add(("conversation", conversation_id), channels, ("event", "audio"), listener)

    def add_control(self, conversation_id: str, listener: Listener, on_gap: GapListener | None) -> LocalSubscription:
        return self._add(("control", conversation_id), (self.keys.control(conversation_id),), ("plain",),
                         _Callbacks(listener, on_gap))

    def add_lifecycle(self, listener: Listener, on_gap: GapListener | None) -> LocalSubscription:
        return self._add(("lifecycle", ""), (self.keys.lifecycle,), ("plain",), _Callbacks(listener, on_gap))

    def _add(self, key: tuple[str, str], channels: tuple[str, ...], kinds: tuple[str, ...], member: Any) -> LocalSubscription:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(key, channels)
            for channel, kind in zip(channels, kinds, strict=True):
                self._by_channel[channel] = (kind, group)
            self.channels.want(channels)
        group.members.append(member)
        return LocalSubscription(self, group, member, channels)

    def remove(self, group: _Group, member: Any) -> None:
        if member in group.members:
            group.members.remove(member)
        if not group.members and self._groups.get(group.key) is group:
            del self._groups[group.key]
            for channel in group.channels:
                self._by_channel.pop(channel, None)
            self.channels.drop(group.channels)

    def listener_count(self, conversation_id: str) -> int:
        group = self._groups.get(("conversation", conversation_id))
        return len(group.members) if group else 0

    @property
    def subscribed_channels(self) -> list[str]:
        return list(self._by_channel)

    # --- delivery --------------------------------------------------------------------------------------
    def has_listeners(self, channel: str) -> bool:
        return channel in self._by_channel

    def deliver(self, channel: str, decode: Callable[[], dict[str, Any]]) -> None:
        """One message on `channel`: decoded once (only if someone listens), then handed to every listener."""
        entry = self._by_channel.get(channel)
        if entry is None:
            return
        kind, group = entry
        try:
            message = decode()
        except Exception:
            log.warning("dropped an undecodable message on %s", channel, exc_info=True)
            return
        for member in list(group.members):
            try:
                if kind == "event":
                    member.on_event(message)
                elif kind == "audio":
                    member.on_audio(message)
                else:
                    member.listener(message)
            except Exception:
                log.exception("listener on %s failed", channel)

    def gap(self, reason: str) -> None:
        """Tell every listener that messages may have been lost (the connection to Redis was interrupted)."""
        for group in list(self._groups.values()):
            for member in list(group.members):
                try:
                    if isinstance(member, _Callbacks):
                        if member.on_gap is not None:
                            member.on_gap(reason)
                    else:
                        member.on_gap(reason)
                except Exception:
                    log.exception("on_gap listener failed")

