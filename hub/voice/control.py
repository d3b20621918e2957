"""Supervisor actions (monitor:control): whisper, barge / release, supervisor audio, end the call.

Each is published twice: first as a `control` history event (the audit trail monitors see as `Control`,
so it always comes before what the action causes, e.g. `ConversationEnded`), then on `:control` to the
pipeline and the caller's node. Barge is exclusive across nodes through a broker lease, renewed while held
and given back when the holder releases it or disconnects.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from hub.audio.pcm import AudioInvalid, payload_from_argument
from hub.signalr.hub import HubError
from hub.voice.payloads import now_iso

if TYPE_CHECKING:
    from hub.voice.monitor import MonitorState

audit = logging.getLogger("hub.voice.audit")
log = logging.getLogger("hub.voice")


async def _publish(monitor: MonitorState, conversation_id: str, action: str, **extra: Any) -> None:
    broker = monitor.services.broker
    by = monitor.principal.subject
    await broker.publish_event(conversation_id, {
        "type": "control", "conversationId": conversation_id, "action": action, "by": by, "timestamp": now_iso()})
    await broker.publish_control(conversation_id, {"type": action, "conversationId": conversation_id, "by": by, **extra})
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


def _holds(monitor: MonitorState, conversation_id: str) -> bool:
    held = monitor.services.barges.get(conversation_id)
    return held is not None and held[0] == monitor.connection.connection_id


async def barge(monitor: MonitorState, conversation_id: str) -> None:
    await _in_progress(monitor, conversation_id)
    if _holds(monitor, conversation_id):
        return  # already this connection's
    services = monitor.services
    lease = f"barge:{conversation_id}"
    if not await services.broker.acquire_lease(lease, _owner(monitor), services.settings.barge_lease_seconds):
        holder = await _barge_holder(monitor, conversation_id)
        raise HubError(f"Conversation '{conversation_id}' is already barged by {holder}.")
    services.barges[conversation_id] = (monitor.connection.connection_id, monitor.principal.subject)
    monitor.connection.items.setdefault("barges", set()).add(conversation_id)
    renewal = asyncio.get_running_loop().create_task(_keep_lease(monitor, conversation_id))
    monitor.connection.items.setdefault("barge_renewals", {})[conversation_id] = renewal
    await _publish(monitor, conversation_id, "barge")


async def _barge_holder(monitor: MonitorState, conversation_id: str) -> str:
    """Who holds the barge, from the audit trail (the last barge or release event), on any node."""
    held = monitor.services.barges.get(conversation_id)
    if held is not None:
        return held[1]
    try:
        history = await monitor.services.broker.history(conversation_id, 0)
    except Exception:
        return "another supervisor"
    for event in reversed(history.events):
        if event.get("type") == "control" and event.get("action") in ("barge", "release"):
            return str(event.get("by")) if event.get("action") == "barge" else "another supervisor"
    return "another supervisor"


async def _keep_lease(monitor: MonitorState, conversation_id: str) -> None:
    """Renew the barge lease while this connection holds it; a lost lease ends the local hold."""
    services = monitor.services
    ttl = services.settings.barge_lease_seconds
    while True:
        await asyncio.sleep(ttl / 3)
        if not _holds(monitor, conversation_id):
            return
        try:
            renewed = await services.broker.renew_lease(f"barge:{conversation_id}", _owner(monitor), ttl)
        except Exception:
            log.warning("barge lease on %s: renewal failed, retrying", conversation_id)
            continue
        if not renewed:
            log.warning("barge lease on %s was lost", conversation_id)
            services.barges.pop(conversation_id, None)
            monitor.connection.items.get("barges", set()).discard(conversation_id)
            return


async def release_barge(monitor: MonitorState, conversation_id: str, *, quiet: bool = False) -> None:
    services = monitor.services
    if not _holds(monitor, conversation_id):
        if quiet:
            return
        raise HubError(f"This connection does not hold the barge on '{conversation_id}'.")
    del services.barges[conversation_id]
    monitor.connection.items.get("barges", set()).discard(conversation_id)
    renewal = monitor.connection.items.get("barge_renewals", {}).pop(conversation_id, None)
    if renewal is not None:
        renewal.cancel()
    await services.broker.release_lease(f"barge:{conversation_id}", _owner(monitor))
    await _publish(monitor, conversation_id, "release")


async def supervisor_audio(monitor: MonitorState, conversation_id: str, audio: Any) -> None:
    if not _holds(monitor, conversation_id):
        await monitor.conversation(conversation_id)  # an unknown id is reported as such
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
