"""Event shapes sent to VoiceHub clients (voicehub-contract.md sections 2-3), built from broker events.

Broker events carry a `type` (docs/broker.md); this module maps them to SignalR targets and payloads.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from protocol.json_codec import iso_z

TRANSCRIPT_FIELDS = ("conversationId", "turnId", "role", "text", "isFinal", "startTime", "endTime", "confidence",
                     "words", "seq", "timestamp")
HISTORY_TARGETS = {
    "started": "ConversationStarted",
    "updated": "ConversationUpdated",
    "ended": "ConversationEnded",
    "transcript": "TranscriptTurn",
    "dtmf": "Dtmf",
    "control": "Control",
}
"""Broker event type -> monitor event; these carry `seq` and make up a conversation's history."""


def now_iso() -> str:
    return iso_z(datetime.now(UTC).replace(microsecond=(datetime.now(UTC).microsecond // 1000) * 1000))


def now_ms() -> int:
    return int(time.time() * 1000)


def strip_type(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in ("type", "tenantId")}


def transcription(event: dict[str, Any]) -> dict[str, Any]:
    """The `Transcription` / `TranscriptTurn` shape: every field present, in the contract's order."""
    out = {key: event.get(key) for key in TRANSCRIPT_FIELDS}
    out["isFinal"] = bool(out["isFinal"])
    out["words"] = list(out["words"] or [])
    return out


def monitor_event(event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(target, payload) of a history event for monitors, or None if monitors do not see it."""
    kind = event.get("type")
    target = HISTORY_TARGETS.get(kind) if isinstance(kind, str) else None
    if target is None:
        return None
    if kind == "transcript":
        return target, transcription(event)
    if kind in ("started", "updated"):
        conversation = dict(event.get("conversation") or {})
        conversation["seq"] = event.get("seq")
        conversation.setdefault("conversationId", event.get("conversationId"))
        return target, conversation
    return target, strip_type(event)


def audio_frame(conversation_id: str, track: str, frame: int, encoding: str, sample_rate: int,
                timestamp_ms: int, data: bytes) -> dict[str, Any]:
    return {
        "conversationId": conversation_id,
        "track": track,
        "frame": frame,
        "encoding": encoding,
        "sampleRate": sample_rate,
        "channels": 1,
        "timestampMs": timestamp_ms,
        "data": data,
    }


def gap(conversation_id: str, from_seq: int, to_seq: int, reason: str, **extra: Any) -> dict[str, Any]:
    return {"conversationId": conversation_id, "fromSeq": from_seq, "toSeq": to_seq, "reason": reason, **extra}
