"""The stored conversation record and its rendering to the REST shapes of the seed API.

A record is a plain JSON-able dict (camelCase, times in epoch milliseconds) so both stores keep it the
same way; `render_*` turn records into exactly the objects of seed/voisnap-conversations-api.txt.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hub.store.timefmt import from_ms, iso, to_ms

CHANNELS = frozenset({"phone", "webrtc", "webchat", "sms", "whatsapp", "telegram"})
STATUSES = frozenset({"in_progress", "completed", "failed", "abandoned"})
ENDED_STATUSES = STATUSES - {"in_progress"}
DIRECTIONS = frozenset({"inbound", "outbound"})
SORT_FIELDS = ("startedAt", "endedAt", "durationSeconds")
PATCH_FIELDS = frozenset({"status", "tags", "outcome", "notes", "metadata", "agentName", "caller"})
COST_CATEGORIES = ("llm", "tts", "stt", "telephony")
ANALYSIS_SUMMARY_FIELDS = ("sentiment", "sentimentScore", "intent", "summary", "customFields")
# Assumption (the seed shows one example, 90 days after the call): recordings are kept 90 days.
RECORDING_RETENTION = timedelta(days=90)
DEFAULT_LANGUAGE = "en-US"

Record = dict[str, Any]


@dataclass(frozen=True)
class ConversationFilter:
    agent_id: str | None = None
    channel: str | None = None
    status: str | None = None
    direction: str | None = None
    date_from: datetime | None = None  # inclusive, on startedAt
    date_to: datetime | None = None  # inclusive, on startedAt
    outcome: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)  # every listed tag must be present
    min_duration: float | None = None


def new_record(
    tenant_id: str,
    conversation_id: str,
    *,
    agent_id: str,
    channel: str,
    direction: str,
    metadata: dict[str, Any] | None,
    caller: dict[str, Any] | None,
    started_at: datetime,
) -> Record:
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}")
    return {
        "id": conversation_id,
        "tenantId": tenant_id,
        "agentId": agent_id,
        "agentName": None,
        "channel": channel,
        "status": "in_progress",
        "direction": direction,
        "startedAtMs": to_ms(started_at),
        "endedAtMs": None,
        "endReason": None,
        "caller": dict(caller or {}),
        "metadata": dict(metadata or {}),
        "tags": [],
        "outcome": None,
        "notes": None,
        "cost": zero_cost(),
        "analysis": None,
        "recording": None,
    }


def zero_cost() -> dict[str, float]:
    return {"totalUsd": 0.0, "llmUsd": 0.0, "ttsUsd": 0.0, "sttUsd": 0.0, "telephonyUsd": 0.0}


def duration_seconds(record: Record, now_ms: int) -> float:
    end: int = record["endedAtMs"] if record["endedAtMs"] is not None else now_ms
    start: int = record["startedAtMs"]
    return max(0.0, (end - start) / 1000)


def sort_score(record: Record, sort_by: str, now_ms: int) -> float:
    if sort_by == "startedAt":
        return float(record["startedAtMs"])
    if sort_by == "endedAt":
        return math.inf if record["endedAtMs"] is None else float(record["endedAtMs"])
    if sort_by == "durationSeconds":
        return duration_seconds(record, now_ms)
    raise ValueError(f"unknown sort field {sort_by!r}")


def matches(record: Record, f: ConversationFilter, now_ms: int) -> bool:
    if f.agent_id is not None and record["agentId"] != f.agent_id:
        return False
    if f.channel is not None and record["channel"] != f.channel:
        return False
    if f.status is not None and record["status"] != f.status:
        return False
    if f.direction is not None and record["direction"] != f.direction:
        return False
    if f.outcome is not None and record["outcome"] != f.outcome:
        return False
    if f.tags and not set(f.tags) <= set(record["tags"]):
        return False
    if f.date_from is not None and record["startedAtMs"] < to_ms(f.date_from):
        return False
    if f.date_to is not None and record["startedAtMs"] > to_ms(f.date_to):
        return False
    return not (f.min_duration is not None and duration_seconds(record, now_ms) < f.min_duration)


def apply_patch(record: Record, patch: dict[str, Any], now_ms: int) -> None:
    unknown = set(patch) - PATCH_FIELDS
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    if "status" in patch:
        status = patch["status"]
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        record["status"] = status
        if status in ENDED_STATUSES and record["endedAtMs"] is None:
            record["endedAtMs"] = max(now_ms, record["startedAtMs"])
        if status == "in_progress":  # reopened: endedAtMs is None exactly while in progress (the indices rely on it)
            record["endedAtMs"] = None
            record["endReason"] = None
    if "tags" in patch:
        record["tags"] = dedupe([str(t) for t in patch["tags"]])
    for key in ("outcome", "notes", "agentName"):
        if key in patch:
            record[key] = patch[key]
    for key in ("metadata", "caller"):
        if key in patch:
            record[key] = {**record[key], **dict(patch[key] or {})}


def dedupe(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


def tag_merger(tags: list[str]) -> Callable[[Record], None]:
    """A change that appends `tags` to a record's tags, keeping the first occurrence of each."""
    added = [str(t) for t in tags]

    def change(record: Record) -> None:
        record["tags"] = dedupe(record["tags"] + added)

    return change


def ender(status: str, reason: str, ended_ms: int) -> Callable[[Record], None]:
    """A change that ends a conversation with an ended status (never before it started)."""
    if status not in ENDED_STATUSES:
        raise ValueError(f"status {status!r} does not end a conversation")

    def change(record: Record) -> None:
        record["status"] = status
        record["endReason"] = reason
        record["endedAtMs"] = max(ended_ms, record["startedAtMs"])

    return change


def cost_summary(costs: dict[str, Any]) -> dict[str, float]:
    breakdown = costs.get("breakdown") or {}
    summary = zero_cost()
    for category in COST_CATEGORIES:
        summary[f"{category}Usd"] = float((breakdown.get(category) or {}).get("cost") or 0.0)
    total = costs.get("total")
    summary["totalUsd"] = float(total) if total is not None else round(sum(v for k, v in summary.items() if k != "totalUsd"), 6)
    return summary


def analysis_summary(analysis: dict[str, Any]) -> dict[str, Any]:
    summary = {key: analysis.get(key) for key in ANALYSIS_SUMMARY_FIELDS}
    summary["customFields"] = dict(analysis.get("customFields") or {})
    return summary


def render_conversation(record: Record, now_ms: int) -> dict[str, Any]:
    recording = record["recording"]
    caller = {"phoneNumber": None, "country": None} | record["caller"]
    return {
        "id": record["id"],
        "agentId": record["agentId"],
        "agentName": record["agentName"],
        "channel": record["channel"],
        "status": record["status"],
        "direction": record["direction"],
        "startedAt": iso(from_ms(record["startedAtMs"])),
        "endedAt": iso(from_ms(record["endedAtMs"])) if record["endedAtMs"] is not None else None,
        "durationSeconds": int(duration_seconds(record, now_ms)),
        "caller": caller,
        "metadata": record["metadata"],
        "cost": dict(record["cost"]),
        "analysis": record["analysis"],
        "recording": render_recording_summary(recording),
        "tags": list(record["tags"]),
        "outcome": record["outcome"],
    }


def render_recording_summary(recording: dict[str, Any] | None) -> dict[str, Any]:
    if recording is None:
        return {"available": False, "durationSeconds": None, "format": "mp3", "expiresAt": None}
    expires = from_ms(recording["createdAtMs"]) + RECORDING_RETENTION
    return {"available": True, "durationSeconds": int(recording["durationSeconds"]), "format": "mp3", "expiresAt": iso(expires)}


def message_id(turn_id: str) -> str:
    return "msg_" + turn_id.removeprefix("turn_")


def stored_turn(turn: dict[str, Any]) -> dict[str, Any]:
    """Keep the final Transcription fields the REST views need (contract section 2)."""
    role = turn.get("role")
    if role not in ("user", "agent"):
        raise ValueError(f"turn role must be user or agent, not {role!r}")
    if not turn.get("turnId") or not isinstance(turn.get("text"), str):
        raise ValueError("turn needs turnId and text")
    return {
        "turnId": str(turn["turnId"]),
        "role": role,
        "text": turn["text"],
        "startTime": float(turn.get("startTime") or 0.0),
        "endTime": float(turn.get("endTime") or 0.0),
        "confidence": float(turn["confidence"]) if turn.get("confidence") is not None else None,
        "words": [dict(w) for w in turn.get("words") or []],
    }


def render_transcript(record: Record, turns: list[dict[str, Any]], now_ms: int) -> dict[str, Any]:
    return {
        "conversationId": record["id"],
        "language": record["metadata"].get("language") or DEFAULT_LANGUAGE,
        "durationSeconds": int(duration_seconds(record, now_ms)),
        "turns": [
            {
                "id": t["turnId"],
                "speaker": t["role"],
                "text": t["text"],
                "startTime": t["startTime"],
                "endTime": t["endTime"],
                "confidence": t["confidence"],
                "words": t["words"],
            }
            for t in turns
        ],
    }


def render_messages(record: Record, turns: list[dict[str, Any]]) -> dict[str, Any]:
    started = record["startedAtMs"]
    return {
        "conversationId": record["id"],
        "messages": [
            {
                "id": message_id(t["turnId"]),
                "role": t["role"],
                "content": t["text"],
                "timestamp": iso(from_ms(started + round(t["startTime"] * 1000))),
                "durationMs": max(0, round((t["endTime"] - t["startTime"]) * 1000)),
            }
            for t in turns
        ],
    }


def render_costs(record: Record, costs: dict[str, Any] | None) -> dict[str, Any]:
    costs = costs or {}
    return {
        "conversationId": record["id"],
        "currency": costs.get("currency") or "USD",
        "total": float(costs["total"]) if costs.get("total") is not None else record["cost"]["totalUsd"],
        "breakdown": dict(costs.get("breakdown") or {}),
    }


def render_analysis(record: Record, analysis: dict[str, Any]) -> dict[str, Any]:
    return {"conversationId": record["id"]} | {k: v for k, v in analysis.items() if k != "conversationId"}


def merge_turn(turns: list[dict[str, Any]], turn: dict[str, Any]) -> list[dict[str, Any]]:
    """A repeated turnId replaces the earlier turn (at-least-once delivery from the pipeline)."""
    out = [t for t in turns if t["turnId"] != turn["turnId"]]
    out.append(turn)
    out.sort(key=lambda t: (t["startTime"], t["turnId"]))
    return out
