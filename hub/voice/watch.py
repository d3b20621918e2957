"""One monitor connection's interest in one conversation, and what it has been sent.

A connection has at most one Watch per conversation however it subscribed (Subscribe, SubscribeAll or
both), so it receives each event once. `last_seq` is the highest history event delivered; live events
with a seq at or below it are duplicates and skipped. While a Subscribe prepares its snapshot the watch
holds live events back (`held`) and releases those newer than the snapshot right after the reply.
"""

from __future__ import annotations

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


class Watch:
    def __init__(self, connection: HubConnectionContext, conversation_id: str, *, may_listen: bool) -> None:
        self.connection = connection
        self.conversation_id = conversation_id
        self.may_listen = may_listen
        self.options: SubscriptionOptions | None = None  # an explicit Subscribe
        self.via_all = False  # matched by SubscribeAll
        self.all_transcripts = False  # ... with transcripts
        self.last_seq = 0
        self.held: list[tuple[int, str, bool, OutgoingMessage]] | None = None
        self.overflowed = False
        self.dropped_frames = 0  # audio frames dropped for this slow connection (reported with Gap)

    # --- what this watch wants ----------------------------------------------------------------------
    def wants(self, kind: str, is_final: bool) -> bool:
        if kind != "transcript":
            return True
        options = self.options
        if options is not None and options.transcript and (is_final or options.partials):
            return True
        return self.all_transcripts

    def audio_formats(self) -> set[AudioFormat]:
        from hub.audio.render import AudioFormat

        options = self.options
        if options is None or not self.may_listen:
            return set()
        return {AudioFormat(track, options.encoding, options.sample_rate)  # type: ignore[arg-type]  # parsed values
                for track in _tracks(options)}

    @property
    def wants_levels(self) -> bool:
        return self.options is not None and (self.options.audio == "none" or not self.may_listen)

    @property
    def idle(self) -> bool:
        return self.options is None and not self.via_all

    # --- delivery -----------------------------------------------------------------------------------
    def offer(self, seq: int, kind: str, is_final: bool, message: OutgoingMessage) -> None:
        if self.held is not None:
            if len(self.held) < MAX_HELD:
                self.held.append((seq, kind, is_final, message))
            else:
                self.overflowed = True
            return
        if seq <= self.last_seq or not self.wants(kind, is_final):
            return
        self.last_seq = seq
        self.connection.send_encoded(message)

    def hold(self) -> None:
        self.held = []
        self.overflowed = False

    def release(self, after_seq: int, replay: list[tuple[int, str, bool, OutgoingMessage]] = ()) -> None:  # type: ignore[assignment]
        """After the snapshot reply: `replay` (history the client asked for), then everything held that is
        newer, in seq order, each once."""
        held, self.held = self.held or [], None
        self.last_seq = after_seq
        if self.overflowed:
            self.send_gap(self.last_seq + 1, max((seq for seq, *_ in held), default=self.last_seq), "slow_consumer")
        for seq, kind, is_final, message in [*replay, *sorted(held, key=lambda item: item[0])]:
            self.offer(seq, kind, is_final, message)

    def send(self, target: str, payload: dict[str, Any]) -> None:
        self.connection.send_message(InvocationMessage(target, [payload]))

    def send_gap(self, from_seq: int, to_seq: int, reason: str, **extra: Any) -> None:
        self.send("Gap", gap(self.conversation_id, from_seq, to_seq, reason, **extra))


def _tracks(options: SubscriptionOptions) -> tuple[str, ...]:
    return options.tracks
