"""Supervisor actions (monitor:control): whisper, barge / release, supervisor audio, end the call.

Each is published twice: to the pipeline and the caller's node on `:control`, and as a `control` history
event (the audit trail monitors see as `Control`). Barge is exclusive across nodes through a broker lease.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hub.audio.pcm import AudioInvalid, payload_from_argument
from hub.signalr.hub import HubError
from hub.voice.payloads import now_iso

if TYPE_CHECKING:
    from hub.voice.monitor import MonitorState

audit = logging.getLogger("hub.voice.audit")


async def _publish(monitor: MonitorState, conversation_id: str, action: str, **extra: Any) -> None:
    broker = monitor.services.broker
    by = monitor.principal.subject
    await broker.publish_control(conversation_id, {"type": action, "conversationId": conversation_id, "by": by, **extra})
    await broker.publish_event(conversation_id, {
        "type": "control", "conversationId": conversation_id, "action": action, "by": by, "timestamp": now_iso()})
    audit.info("%s by %s (tenant %s) on %s", action, by, monitor.tenant_id, conversation_id)


async def _in_progress(monitor: MonitorState, conversation_id: str) -> dict[str, Any]:
    conversation = await monitor.conversation(conversation_id)
    if conversation.get("status") != "in_progress":
        raise HubError(f"Conversation '{conversation_id}' is not in progress.")
    return conversation


async def whisper(monitor: MonitorState, conversation_id: str, text: Any) -> None:
    limit = monitor.services.settings.max_whisper_chars
    if not isinstance(text, str) or not text.strip() or len(text) > limit:
        raise HubError(f"Whisper text must be 1 to {limit} characters.")
    await _in_progress(monitor, conversation_id)
    await _publish(monitor, conversation_id, "whisper", text=text)


def _owner(monitor: MonitorState) -> str:
    return f"{monitor.principal.subject}|{monitor.connection.connection_id}"


async def barge(monitor: MonitorState, conversation_id: str) -> None:
    await _in_progress(monitor, conversation_id)
    services = monitor.services
    owner = _owner(monitor)
    lease = f"barge:{conversation_id}"
    if not await services.broker.acquire_lease(lease, owner, services.settings.barge_lease_seconds):
        holder = await _lease_holder(monitor, lease)
        raise HubError(f"Conversation '{conversation_id}' is already barged by {holder}.")
    services.barges[conversation_id] = (monitor.connection.connection_id, monitor.principal.subject)
    monitor.connection.items.setdefault("barges", set()).add(conversation_id)
    await _publish(monitor, conversation_id, "barge")


async def _lease_holder(monitor: MonitorState, lease: str) -> str:
    holder_of = getattr(monitor.services.broker, "lease_owner", None)
    if holder_of is None:
        return "another supervisor"
    owner = await holder_of(lease)
    return str(owner).split("|", 1)[0] if owner else "another supervisor"


async def release_barge(monitor: MonitorState, conversation_id: str, *, quiet: bool = False) -> None:
    services = monitor.services
    held = services.barges.get(conversation_id)
    if held is None or held[0] != monitor.connection.connection_id:
        if quiet:
            return
        raise HubError(f"This connection does not hold the barge on '{conversation_id}'.")
    del services.barges[conversation_id]
    monitor.connection.items.get("barges", set()).discard(conversation_id)
    await services.broker.release_lease(f"barge:{conversation_id}", _owner(monitor))
    await _publish(monitor, conversation_id, "release")


async def supervisor_audio(monitor: MonitorState, conversation_id: str, audio: Any) -> None:
    held = monitor.services.barges.get(conversation_id)
    if held is None or held[0] != monitor.connection.connection_id:
        raise HubError("Only the barge holder may send supervisor audio.")
    try:
        data = payload_from_argument(audio)
    except AudioInvalid as exc:
        raise HubError(str(exc)) from None
    await monitor.services.broker.publish_control(conversation_id, {
        "type": "supervisor_audio", "conversationId": conversation_id, "data": data, "sampleRate": 16000})


async def end_conversation(monitor: MonitorState, conversation_id: str, reason: Any) -> None:
    if not isinstance(reason, str) or not reason or len(reason) > 100:
        raise HubError("reason must be a short text.")
    await _in_progress(monitor, conversation_id)
    await _publish(monitor, conversation_id, "end", reason=reason)
