"""Event shapes sent to VoiceHub clients (voicehub-contract.md sections 2-3), built from broker events.

Broker events carry a `type` (docs/broker.md); this module maps them to SignalR targets and payloads.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

TRANSCRIPT_FIELDS = ("conversationId", "turnId", "role", "text", "isFinal", "startTime", "endTime", "confidence",
                     "words", "seq", "timestamp")
HISTORY_TARGETS = {
    "started": "ConversationStarted",
    "updated": "ConversationUpdated",
    "ended": "ConversationEnded",
    "transcript": "TranscriptTurn",
    "dtmf": "Dtmf",
    "control": "Control",
    "cost": "ConversationUpdated",
    "analysis": "ConversationUpdated",
    "status": "ConversationUpdated",
}
"""Broker event type -> monitor event; these carry `seq` and make up a conversation's history."""


def now_iso() -> str:
    """Now as ISO-8601 UTC with milliseconds and `Z` (the format of every timestamp VoiceHub sends)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    if kind in PIPELINE_UPDATES:
        return target, pipeline_update(event)
    if kind in ("started", "updated"):
        conversation = dict(event.get("conversation") or {})
        conversation["seq"] = event.get("seq")
        conversation.setdefault("conversationId", event.get("conversationId"))
        return target, conversation
    return target, strip_type(event)


PIPELINE_UPDATES = ("cost", "analysis", "status")


def pipeline_update(event: dict[str, Any]) -> dict[str, Any]:
    """A pipeline's cost / analysis / status event as a partial `ConversationUpdated` (only the fields it
    changes), so monitors see every seq; the caller's node follows with the whole stored object."""
    from hub.store.models import analysis_summary, cost_summary

    conversation_id = event.get("conversationId")
    out: dict[str, Any] = {"id": conversation_id, "conversationId": conversation_id}
    kind = event.get("type")
    if kind == "cost" and isinstance(event.get("costs"), dict):
        out["cost"] = cost_summary(event["costs"])
    elif kind == "analysis" and isinstance(event.get("analysis"), dict):
        out["analysis"] = analysis_summary(event["analysis"])
    elif kind == "status" and isinstance(event.get("patch"), dict):
        out.update({k: v for k, v in event["patch"].items() if k not in ("id", "conversationId", "seq")})
    out["seq"] = event.get("seq")
    return out


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
