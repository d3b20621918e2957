"""What Subscribe answers: the conversation, its final turns so far, its open partial turns, and the seq
they reflect (voicehub-contract.md section 3). Built from the broker's history, the same log the live
events come from, so snapshot and live never disagree."""

from __future__ import annotations

from typing import Any

from hub.signalr.outbound import OutgoingMessage
from hub.voice.payloads import monitor_event, transcription
from protocol import InvocationMessage

Replay = list[tuple[int, str, bool, OutgoingMessage]]


def build_snapshot(conversation: dict[str, Any], events: list[dict[str, Any]], last_seq: int,
                   trimmed: bool = False) -> dict[str, Any]:
    finals: list[dict[str, Any]] = []
    partials: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.get("type") != "transcript":
            continue
        turn = transcription(event)
        turn_id = str(turn.get("turnId"))
        if turn["isFinal"]:
            finals.append(turn)
            partials.pop(turn_id, None)
        else:
            partials[turn_id] = turn
    snapshot: dict[str, Any] = {
        "conversation": conversation,
        "transcript": finals,
        "partials": list(partials.values()),
        "seq": last_seq,
    }
    if trimmed:
        snapshot["truncated"] = True
    return snapshot


def replay_messages(events: list[dict[str, Any]]) -> Replay:
    out: Replay = []
    for event in events:
        mapped = monitor_event(event)
        seq = event.get("seq")
        if mapped is None or not isinstance(seq, int):
            continue
        target, payload = mapped
        message = OutgoingMessage(InvocationMessage(target, [payload]))
        out.append((seq, str(event.get("type")), bool(event.get("isFinal", True)), message))
    return out
