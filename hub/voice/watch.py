"""One monitor connection's interest in one conversation, and what it has been sent.

A connection has at most one Watch per conversation however it subscribed (Subscribe, SubscribeAll or
both), so it receives each event once. `last_seq` is the highest history event delivered; live events
with a seq at or below it are duplicates and skipped. While a Subscribe prepares its snapshot the watch
holds live events back (`held`) and releases those newer than the snapshot right after the reply.
Holds nest (a Subscribe and a SubscribeAll backfill may overlap): held events go out at the last release.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hub.signalr.outbound import OutgoingMessage
from hub.voice.options import SubscriptionOptions
from hub.voice.payloads import gap
from protocol import InvocationMessage

if TYPE_CHECKING:
    from hub.audio.render import AudioFormat
    from hub.signalr.context import HubConnectionContext

MAX_HELD = 10_000
"""Live events held while a snapshot is built; past it the watch reports a Gap instead of growing."""

Replay = list[tuple[int, str, bool, OutgoingMessage]]


class Watch:
    def __init__(self, connection: HubConnectionContext, conversation_id: str, *, may_listen: bool) -> None:
        self.connection = connection
        self.conversation_id = conversation_id
        self.may_listen = may_listen
        self._options: SubscriptionOptions | None = None  # an explicit Subscribe
        self.formats: frozenset[AudioFormat] = frozenset()  # the audio formats it receives (from options)
        self.via_all = False  # matched by SubscribeAll
        self.all_transcripts = False  # ... with transcripts
        self.all_partials = False  # ... and partial turns
        self.last_seq = 0
        self.held: Replay | None = None
        self._holds = 0
        self.overflowed = False
        self.dropped_frames = 0  # audio frames dropped for this slow connection (reported with Gap)
        self.on_ended: Callable[[str], None] | None = None  # told when the conversation's `ended` event passes

    # --- what this watch wants ----------------------------------------------------------------------
    @property
    def options(self) -> SubscriptionOptions | None:
        return self._options

    @options.setter
    def options(self, options: SubscriptionOptions | None) -> None:
        from hub.audio.render import formats_for_subscription

        self._options = options
        if options is None or not self.may_listen:
            self.formats = frozenset()
        else:
            self.formats = formats_for_subscription(options.audio, options.encoding, options.sample_rate)

    def wants(self, kind: str, is_final: bool) -> bool:
        if kind != "transcript":
            return True
        options = self._options
        if options is not None and options.transcript and (is_final or options.partials):
            return True
        return self.all_transcripts and (is_final or self.all_partials)

    @property
    def wants_levels(self) -> bool:
        return self._options is not None and (self._options.audio == "none" or not self.may_listen)

    @property
    def idle(self) -> bool:
        return self._options is None and not self.via_all

    # --- delivery -----------------------------------------------------------------------------------
    def offer(self, seq: int, kind: str, is_final: bool, message: OutgoingMessage) -> None:
        if self.held is not None:
            if len(self.held) < MAX_HELD:
                self.held.append((seq, kind, is_final, message))
            else:
                self.overflowed = True
            return
        self._deliver(seq, kind, is_final, message)

    def _deliver(self, seq: int, kind: str, is_final: bool, message: OutgoingMessage) -> None:
        if seq <= self.last_seq:
            return
        self.last_seq = seq  # seen, wanted or not: a Gap after an outage counts only what really went missing
        if self.wants(kind, is_final):
            self.connection.send_encoded(message)

    def hold(self) -> None:
        if self._holds == 0:
            self.held = []
            self.overflowed = False
        self._holds += 1

    def release(self, after_seq: int, replay: Replay | None = None) -> None:
        """After the snapshot reply: `replay` (history the client asked for), then, at the last release,
        everything held that is newer, in seq order, each once."""
        self._holds = max(0, self._holds - 1)
        self.last_seq = after_seq
        for seq, kind, is_final, message in replay or ():
            self._deliver(seq, kind, is_final, message)
        if self._holds:
            return
        held, self.held = self.held or [], None
        if self.overflowed:
            self.send_gap(self.last_seq + 1, max((seq for seq, *_ in held), default=self.last_seq), "slow_consumer")
        for seq, kind, is_final, message in sorted(held, key=lambda item: item[0]):
            self._deliver(seq, kind, is_final, message)

    def send(self, target: str, payload: dict[str, Any]) -> None:
        self.connection.send_message(InvocationMessage(target, [payload]))

    def send_gap(self, from_seq: int, to_seq: int, reason: str, **extra: Any) -> None:
        self.send("Gap", gap(self.conversation_id, from_seq, to_seq, reason, **extra))
