"""Validation of what monitors send: subscription options and conversation filters (contract section 3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.signalr.hub import HubError

AUDIO_MODES = ("none", "mixed", "caller", "agent", "both")
ENCODINGS = ("pcm_s16le", "mulaw")
SAMPLE_RATES = (8000, 16000, 24000, 48000)
OPTION_KEYS = frozenset({"transcript", "partials", "audio", "encoding", "sampleRate", "fromSeq"})
FILTER_KEYS = frozenset({"status", "agentId", "channel", "direction", "tags"})
MAX_ID_LENGTH = 100


@dataclass(frozen=True)
class SubscriptionOptions:
    transcript: bool = True
    partials: bool = True
    audio: str = "none"
    encoding: str = "pcm_s16le"
    sample_rate: int = 16000
    from_seq: int | None = None

    @property
    def tracks(self) -> tuple[str, ...]:
        if self.audio == "none":
            return ()
        if self.audio == "both":
            return ("caller", "agent")
        return (self.audio,)


def _bool(raw: dict[str, Any], key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise HubError(f"options.{key} must be true or false.")
    return value


def parse_options(raw: Any, base: SubscriptionOptions | None = None) -> SubscriptionOptions:
    """Options from a client (None: defaults, or `base` for UpdateSubscription); HubError names what is wrong."""
    base = base or SubscriptionOptions()
    if raw is None:
        return base
    if not isinstance(raw, dict):
        raise HubError("options must be an object.")
    unknown = set(raw) - OPTION_KEYS
    if unknown:
        raise HubError(f"Unknown option(s): {', '.join(sorted(unknown))}.")
    audio = raw.get("audio", base.audio)
    if audio not in AUDIO_MODES:
        raise HubError(f"options.audio must be one of {', '.join(AUDIO_MODES)}.")
    encoding = raw.get("encoding", base.encoding)
    if encoding not in ENCODINGS:
        raise HubError(f"options.encoding must be one of {', '.join(ENCODINGS)}.")
    rate = raw.get("sampleRate", base.sample_rate)
    if isinstance(rate, bool) or rate not in SAMPLE_RATES:
        raise HubError("options.sampleRate must be 8000, 16000, 24000 or 48000.")
    from_seq = raw.get("fromSeq", base.from_seq)
    if from_seq is not None and (isinstance(from_seq, bool) or not isinstance(from_seq, int) or from_seq < 0):
        raise HubError("options.fromSeq must be a non-negative integer.")
    return SubscriptionOptions(
        transcript=_bool(raw, "transcript", base.transcript),
        partials=_bool(raw, "partials", base.partials),
        audio=audio,
        encoding=encoding,
        sample_rate=int(rate),
        from_seq=from_seq,
    )


@dataclass(frozen=True)
class ConversationMatch:
    status: str | None = "in_progress"
    agent_id: str | None = None
    channel: str | None = None
    direction: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)

    def matches(self, conversation: dict[str, Any]) -> bool:
        if self.status is not None and conversation.get("status") != self.status:
            return False
        if self.agent_id is not None and conversation.get("agentId") != self.agent_id:
            return False
        if self.channel is not None and conversation.get("channel") != self.channel:
            return False
        if self.direction is not None and conversation.get("direction") != self.direction:
            return False
        have = set(conversation.get("tags") or ())
        return all(tag in have for tag in self.tags)


def parse_filter(raw: Any, *, default_status: str | None = "in_progress") -> ConversationMatch:
    if raw is None:
        return ConversationMatch(status=default_status)
    if not isinstance(raw, dict):
        raise HubError("filter must be an object.")
    unknown = set(raw) - FILTER_KEYS
    if unknown:
        raise HubError(f"Unknown filter field(s): {', '.join(sorted(unknown))}.")
    for key in ("status", "agentId", "channel", "direction"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > MAX_ID_LENGTH):
            raise HubError(f"filter.{key} must be a string.")
    tags = raw.get("tags") or ()
    if isinstance(tags, str):
        tags = tuple(t.strip() for t in tags.split(",") if t.strip())
    if not isinstance(tags, list | tuple) or not all(isinstance(t, str) for t in tags):
        raise HubError("filter.tags must be a list of strings.")
    return ConversationMatch(
        status=raw.get("status", default_status),
        agent_id=raw.get("agentId"),
        channel=raw.get("channel"),
        direction=raw.get("direction"),
        tags=tuple(tags),
    )


def conversation_id_arg(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("conv_") or len(value) > MAX_ID_LENGTH:
        raise HubError("conversationId must be a conversation id (conv_...).")
    return value
