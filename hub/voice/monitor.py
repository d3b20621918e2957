"""Monitor mode: one connection watching any number of its tenant's conversations (contract section 3)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from hub.auth.principal import Principal
from hub.signalr.hub import HubError, ReplyThen
from hub.store.models import ConversationFilter
from hub.voice.options import ConversationMatch, SubscriptionOptions, parse_options
from hub.voice.payloads import monitor_event, now_iso
from hub.voice.snapshot import build_snapshot, replay_messages
from hub.voice.watch import Watch

if TYPE_CHECKING:
    from hub.signalr.context import HubConnectionContext
    from hub.voice.services import VoiceServices

log = logging.getLogger("hub.voice")

ENDED_WATCH_SECONDS = 30.0
"""How long a Subscribe outlives its conversation's end (the pipeline's analysis usually follows the end)."""
MAX_EXPIRED_REMEMBERED = 1000
"""Subscriptions that ended with their conversation, remembered so UpdateSubscription on them is a no-op."""


class MonitorState:
    def __init__(self, services: VoiceServices, connection: HubConnectionContext, principal: Principal) -> None:
        self.services = services
        self.connection = connection
        self.principal = principal
        self.watches: dict[str, Watch] = {}
        self.all_filter: ConversationMatch | None = None
        self.all_transcripts = False
        self.all_partials = False
        self._lifecycle_seq: dict[str, int] = {}
        self._expiring: dict[str, asyncio.TimerHandle] = {}  # ended conversations still watched for a while
        self._expired: dict[str, None] = {}  # subscriptions that ended with their conversation (oldest first)
        connection.drop_listeners.append(self._on_dropped_audio)

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    def _capabilities(self) -> list[str]:
        return sorted(s for s in ("monitor:read", "monitor:listen", "monitor:control") if self.principal.has(s))

    # --- conversations ------------------------------------------------------------------------------
    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        if not self.principal.may_access(conversation_id):
            raise HubError("This token is restricted to another conversation.")
        conversation = await self.services.store.get_conversation(self.tenant_id, conversation_id)
        if conversation is None:
            raise HubError(f"Conversation '{conversation_id}' was not found.")
        return conversation

    async def list_conversations(self, match: ConversationMatch) -> list[dict[str, Any]]:
        filters = ConversationFilter(status=match.status, agent_id=match.agent_id, channel=match.channel,
                                     direction=match.direction, tags=match.tags)
        rows, _total = await self.services.store.list_conversations(self.tenant_id, filters, 1, 100, "startedAt", "desc")
        if self.principal.conversation_id is not None:
            rows = [r for r in rows if r.get("id") == self.principal.conversation_id]
        return rows

    def _watch(self, conversation_id: str) -> Watch:
        watch = self.watches.get(conversation_id)
        if watch is None:
            settings = self.services.settings
            if len(self.watches) >= settings.max_subscriptions:
                raise HubError(f"A connection may watch at most {settings.max_subscriptions} conversations.")
            counts = self.services.watches_by_tenant
            if counts.get(self.tenant_id, 0) >= settings.max_subscriptions_per_tenant:
                raise HubError(f"This tenant's monitors may watch at most {settings.max_subscriptions_per_tenant} "
                               "conversations on this node.")
            counts[self.tenant_id] = counts.get(self.tenant_id, 0) + 1
            watch = Watch(self.connection, conversation_id, may_listen=self.principal.has("monitor:listen"))
            watch.on_ended = self.conversation_over
            self.watches[conversation_id] = watch
            feed = self.services.feeds.feed(conversation_id)
            feed.watches[self.connection.connection_id] = watch
            feed.formats_changed()
        return watch

    def conversation_over(self, conversation_id: str) -> None:
        """The conversation ended: keep the watch ENDED_WATCH_SECONDS for late cost/analysis, then drop it, so
        ended calls do not count against the connection's limit (Unsubscribe is not needed)."""
        if conversation_id not in self._expiring:
            loop = asyncio.get_running_loop()
            self._expiring[conversation_id] = loop.call_later(ENDED_WATCH_SECONDS, self._expire, conversation_id)

    def _expire(self, conversation_id: str) -> None:
        self._forget(conversation_id)
        self._expired[conversation_id] = None
        while len(self._expired) > MAX_EXPIRED_REMEMBERED:
            del self._expired[next(iter(self._expired))]

    def _forget(self, conversation_id: str) -> None:
        expiring = self._expiring.pop(conversation_id, None)
        if expiring is not None:
            expiring.cancel()
        watch = self.watches.pop(conversation_id, None)
        if watch is None:
            return
        counts = self.services.watches_by_tenant
        left = counts.get(self.tenant_id, 1) - 1
        if left > 0:
            counts[self.tenant_id] = left
        else:
            counts.pop(self.tenant_id, None)
        feed = self.services.feeds.feeds.get(conversation_id)
        if feed is not None:
            feed.watches.pop(self.connection.connection_id, None)
            feed.formats_changed()
            self.services.feeds.release(conversation_id)
        self._presence_changed(conversation_id, add=False)

    # --- Subscribe / Unsubscribe / UpdateSubscription -------------------------------------------------
    async def subscribe(self, conversation_id: str, raw_options: Any) -> ReplyThen:
        options = parse_options(raw_options)
        self._check_audio(options)
        conversation = await self.conversation(conversation_id)
        watch = self._watch(conversation_id)
        watch.options = options
        # Presence counts explicit subscribers only: SubscribeAll watchers (a board of every call) would make each
        # join a Presence of N watchers to N connections, quadratic traffic that took a node to 3 GB in the soak.
        self._presence_changed(conversation_id, add=True)
        if conversation.get("status") != "in_progress":
            self.conversation_over(conversation_id)  # a finished call: its snapshot, then the watch goes
        feed = self.services.feeds.feed(conversation_id)
        feed.formats_changed()
        watch.hold()
        try:
            await feed.ready()
            broker = self.services.broker
            if options.from_seq is None:
                history = await broker.history(conversation_id, 0)
                snapshot = build_snapshot(conversation, history.events, history.last_seq, history.trimmed)
                return ReplyThen(snapshot, lambda: watch.release(history.last_seq))
            history = await broker.history(conversation_id, options.from_seq)
        except Exception:
            watch.release(watch.last_seq)
            raise
        from_seq = options.from_seq
        snapshot = {"conversation": conversation, "transcript": [], "partials": [], "seq": from_seq}

        def replay() -> None:
            if history.trimmed:
                first = history.events[0]["seq"] if history.events else history.last_seq + 1
                watch.send_gap(from_seq + 1, first - 1, "history_trimmed")
            watch.release(from_seq, replay_messages(history.events))

        return ReplyThen(snapshot, replay)

    def _check_audio(self, options: SubscriptionOptions) -> None:
        if options.audio != "none" and not self.principal.has("monitor:listen"):
            raise HubError("Audio needs the monitor:listen scope.")

    def unsubscribe(self, conversation_id: str) -> None:
        watch = self.watches.get(conversation_id)
        if watch is None:
            return
        watch.options = None
        if watch.idle:
            self._forget(conversation_id)
        else:
            self._presence_changed(conversation_id, add=False)  # still followed through SubscribeAll
            feed = self.services.feeds.feeds.get(conversation_id)
            if feed is not None:
                feed.formats_changed()

    def update(self, conversation_id: str, raw_options: Any) -> None:
        watch = self.watches.get(conversation_id)
        if watch is None or watch.options is None:
            if conversation_id in self._expired:
                parse_options(raw_options)  # still refuse bad options
                return  # the conversation ended and its subscription with it: nothing left to change
            raise HubError(f"Not subscribed to '{conversation_id}'.")
        options = parse_options(raw_options, watch.options)
        self._check_audio(options)
        watch.options = options
        feed = self.services.feeds.feeds.get(conversation_id)
        if feed is not None:
            feed.formats_changed()

    # --- SubscribeAll ---------------------------------------------------------------------------------
    async def subscribe_all(self, match: ConversationMatch, options: SubscriptionOptions) -> list[dict[str, Any]]:
        self.all_filter = match
        self.all_transcripts = options.transcript
        self.all_partials = options.partials
        self.services.add_monitor_all(self)
        current = await self.list_conversations(match)
        for conversation in current:
            if self.all_transcripts:
                await self._watch_via_all(conversation["id"], None)
            else:
                # Known to this connection: its ConversationUpdated/Ended come through on_lifecycle.
                self._lifecycle_seq.setdefault(conversation["id"], 0)
        return current

    def unsubscribe_all(self) -> None:
        self.all_filter = None
        self._lifecycle_seq.clear()
        self.services.remove_monitor_all(self)
        for conversation_id, watch in list(self.watches.items()):
            watch.via_all = False
            watch.all_transcripts = False
            watch.all_partials = False
            if watch.idle:
                self._forget(conversation_id)

    async def _watch_via_all(self, conversation_id: str, after_seq: int | None) -> None:
        """Follow a conversation for SubscribeAll: from `after_seq` (backfilled from history) or from now."""
        if self.all_filter is None:
            return  # UnsubscribeAll came first
        watch = self._watch(conversation_id)
        watch.via_all = True
        watch.all_transcripts = True
        watch.all_partials = self.all_partials
        feed = self.services.feeds.feed(conversation_id)
        watch.hold()
        try:
            await feed.ready()
            if after_seq is None:
                watch.release(max(watch.last_seq, await self.services.broker.last_seq(conversation_id)))
                return
            history = await self.services.broker.history(conversation_id, after_seq)
        except Exception:
            watch.release(watch.last_seq)
            raise
        watch.release(max(watch.last_seq, after_seq), replay_messages(history.events))

    def on_lifecycle(self, event: dict[str, Any]) -> None:
        match = self.all_filter
        conversation_id = event.get("conversationId")
        seq = event.get("seq")
        if match is None or not isinstance(conversation_id, str) or not isinstance(seq, int):
            return
        if event.get("tenantId") != self.tenant_id or not self.principal.may_access(conversation_id):
            return
        kind = event.get("type")
        watch = self.watches.get(conversation_id)
        if watch is not None:
            if kind == "ended":
                self._lifecycle_seq.pop(conversation_id, None)
            if kind == "ended" and watch.options is None:
                # Delivered on the conversation's own channel too; a SubscribeAll-only watch ends here.
                self.services.spawn(self._end_via_all(conversation_id))
            return  # the conversation's own channel delivers it, in order with its other events
        conversation = event.get("conversation") or {}
        if kind in ("started", "updated") and not match.matches(conversation):
            return
        if kind == "ended" and conversation_id not in self._lifecycle_seq:
            return
        if seq <= self._lifecycle_seq.get(conversation_id, 0):
            return
        self._lifecycle_seq[conversation_id] = seq
        mapped = monitor_event(event)
        if mapped is not None:
            self.connection.send_message(_invocation(*mapped))
        if kind == "ended":
            self._lifecycle_seq.pop(conversation_id, None)
        elif self.all_transcripts:
            self.services.spawn(self._watch_via_all(conversation_id, seq))

    async def _end_via_all(self, conversation_id: str) -> None:
        watch = self.watches.get(conversation_id)
        if watch is not None and watch.options is None:
            self._forget(conversation_id)

    # --- presence -------------------------------------------------------------------------------------
    def _presence_changed(self, conversation_id: str, *, add: bool) -> None:
        presence = self.services.presence
        if add:
            changed = presence.add(conversation_id, self.connection.connection_id, {
                "userId": self.principal.subject, "connectionId": self.connection.connection_id,
                "capabilities": self._capabilities(), "since": now_iso()})
        else:
            changed = presence.remove(conversation_id, self.connection.connection_id)
        if changed:
            self.services.send_presence(conversation_id)

    def _on_dropped_audio(self, key: object, count: int) -> None:
        if not isinstance(key, tuple) or len(key) != 2 or key[1] == "level":
            return
        watch = self.watches.get(str(key[0]))
        if watch is None:
            return
        watch.dropped_frames += count
        dropped = watch.dropped_frames
        if dropped == count or dropped % 25 == 0:  # the first drop, then one Gap per 500 ms of audio lost
            watch.send_gap(watch.last_seq + 1, watch.last_seq, "slow_consumer", track=key[1], droppedFrames=dropped)

    def close(self) -> None:
        for expiring in self._expiring.values():
            expiring.cancel()
        self._expiring.clear()
        self.all_filter = None
        self.services.remove_monitor_all(self)
        for conversation_id in list(self.watches):
            self._forget(conversation_id)
        barges = self.connection.items.get("barges")
        if barges:
            from hub.voice.control import release_barge

            for conversation_id in list(barges):  # a supervisor who leaves gives the call back
                self.services.spawn(release_barge(self, conversation_id, quiet=True))


def _invocation(target: str, payload: dict[str, Any]) -> Any:
    from protocol import InvocationMessage

    return InvocationMessage(target, [payload])
