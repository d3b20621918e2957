"""Caller sessions across nodes (docs/voicehub.md "Sessions across nodes"): this node's side of the session registry.

`SessionKeeper` registers each caller session this node starts, renews the ownership leases of the sessions it holds,
resumes on this node a session another node owned (takeover), hands its sessions off when it drains, and sweeps the
registry for sessions nobody owns or resumes any more, ending their conversations as abandoned. With the in-memory
broker the registry is private to the process: resuming works on the node that holds the session only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hub.broker.sessions import MemorySessionRegistry, Renewal, SessionRecord, SessionRegistry
from hub.signalr.hub import HubError
from hub.voice.payloads import now_iso, transcription

if TYPE_CHECKING:
    from hub.auth.principal import Principal
    from hub.broker.base import History
    from hub.voice.caller import CallerSession
    from hub.voice.services import VoiceServices

log = logging.getLogger("hub.voice")

SWEEP_BATCH = 50  # sessions a sweep looks at per round
RENEW_BATCH = 500  # sessions renewed per script call
TAKEOVER = "takeover"
"""Control message type (hub -> hub): a node took a session over; the previous owner drops its local copy."""


def wall_ms() -> int:
    return int(time.time() * 1000)


def unknown(session_id: str) -> HubError:
    return HubError(f"Session '{session_id}' is unknown or has expired.")


class SessionKeeper:
    def __init__(self, services: VoiceServices) -> None:
        self.services = services
        broker = services.broker
        registry: SessionRegistry | None = getattr(broker, "sessions", None)
        self.registry: SessionRegistry = registry if registry is not None else MemorySessionRegistry()
        self.node_id: str = getattr(broker, "node_id", None) or "local"
        self._loops: list[asyncio.Task[None]] = []
        self._closing = False  # the loops also stop on this: a cancel can be swallowed by a command timing out at once

    @property
    def shared(self) -> bool:
        return self.registry.shared

    @property
    def lease(self) -> float:
        return self.services.settings.session_lease_seconds

    @property
    def grace(self) -> float:
        """After the lease lapses, how long a sweep still waits before ending a session (a short Redis outage or a
        stalled owner keeps its calls)."""
        return self.services.settings.session_lease_seconds

    # --- node lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        if self._loops:
            return
        self._closing = False
        loop = asyncio.get_running_loop()
        self._loops = [loop.create_task(self._renew_loop(), name="voicehub-session-renewal"),
                       loop.create_task(self._sweep_loop(), name="voicehub-session-sweep")]

    async def close(self) -> None:
        self._closing = True
        loops, self._loops = self._loops, []
        for task in loops:
            task.cancel()
        for task in loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- a session's life on this node -----------------------------------------------------------------
    def record(self, session: CallerSession) -> SessionRecord:
        return SessionRecord(session.session_id, session.tenant_id, session.conversation_id, session.agent_id,
                             owner=self.node_id)

    async def register(self, session: CallerSession) -> None:
        try:
            await self.registry.register(self.record(session), self.lease, self.grace)
            session.registered = True
        except Exception as exc:  # the call goes on; only its resumption elsewhere is at stake
            log.warning("session %s: registering it failed (%s)", session.session_id, exc)

    def update(self, session: CallerSession, *, resume_before_ms: int | None = None) -> None:
        if session.registered:
            self.services.spawn(self._update(session, resume_before_ms))

    async def _update(self, session: CallerSession, resume_before_ms: int | None) -> None:
        try:
            await self.registry.update(session.session_id, self.node_id, resume_before_ms=resume_before_ms,
                                       agent_ms=session.agent_ms)
        except Exception as exc:
            log.warning("session %s: registry update failed (%s)", session.session_id, exc)

    async def may_abandon(self, session: CallerSession) -> bool:
        """Before this node abandons a session: does it still own it? (It may have been resumed elsewhere.)"""
        if not session.registered:
            return True
        try:
            return await self.registry.begin_end(session.session_id, self.node_id)
        except Exception:
            return True  # the registry is unreachable: this node's view is all there is

    async def finished(self, session: CallerSession) -> None:
        with contextlib.suppress(Exception):
            await self.registry.finish(session.session_id, session.conversation_id, self.node_id)

    def can_hand_off(self, session: CallerSession) -> bool:
        """Whether another node could resume the session (a shared registry that knows it)."""
        return self.shared and session.registered

    def hand_off(self, session: CallerSession) -> None:
        """Drain: drop the local session without ending the call; any node may resume it until its deadline."""
        window_ms = round(self.services.settings.resume_window * 1000)
        deadline = max(wall_ms() + window_ms, session.resume_before_ms)
        agent_ms = session.agent_ms
        session.drop(None)
        self.services.spawn(self._release(self.record(session), deadline, agent_ms))

    async def _release(self, record: SessionRecord, deadline_ms: int, agent_ms: int) -> None:
        try:
            released = await self.registry.release(record, self.node_id, deadline_ms, agent_ms)
        except Exception as exc:
            log.warning("session %s: hand-off failed (%s); a sweep ends it once its lease lapses",
                        record.session_id, exc)
            return
        if released:
            log.info("session %s handed off, resumable on any node until %d", record.session_id, deadline_ms)
        else:
            log.info("session %s was already owned elsewhere at its hand-off", record.session_id)

    # --- resuming a session another node held -----------------------------------------------------------
    async def resume(self, principal: Principal, session_id: str) -> CallerSession:
        from hub.voice.caller import CallerSession

        if not self.shared:
            raise unknown(session_id)
        services = self.services
        try:
            before = await self.registry.take_over(session_id, principal.tenant_id, self.node_id, self.lease,
                                                   self.grace)
        except Exception as exc:
            raise HubError(f"Session '{session_id}' could not be resumed: {exc}") from None
        if before is None:
            raise unknown(session_id)
        conversation_id = before.conversation_id
        session: CallerSession | None = None
        try:
            conversation = await services.store.get_conversation(principal.tenant_id, conversation_id)
            if conversation is None or conversation.get("status") != "in_progress":
                await self.registry.finish(session_id, conversation_id, self.node_id)
                raise unknown(session_id)
            session = CallerSession(services, principal, conversation, session_id=session_id)
            session.started = time.monotonic() - _elapsed(conversation)
            session.held_frames = []  # live frames wait until the audiolog was read
            services.sessions[session_id] = session
            await asyncio.gather(session.feed.ready(), session.control_ready())
            session.registered = True
            await services.broker.publish_control(conversation_id, {
                "type": TAKEOVER, "conversationId": conversation_id, "sessionId": session_id, "node": self.node_id})
            frames = await services.broker.recent_audio(conversation_id, 0)
            recover_audio(session, frames, before.agent_ms)
        except HubError:
            raise
        except Exception as exc:
            log.warning("session %s: resuming it failed (%s); it stays resumable", session_id, exc)
            if session is not None:
                self.hand_off(session)
            else:
                deadline = wall_ms() + round(services.settings.resume_window * 1000)
                services.spawn(self._release(before, max(deadline, before.resume_before_ms), before.agent_ms))
            raise HubError(f"Session '{session_id}' could not be resumed: {exc}") from None
        log.info("session %s of %s resumed on %s (was %s)", session_id, conversation_id, self.node_id,
                 before.owner or "handed off")
        services.spawn(self._caught_up(session))
        return session

    async def _caught_up(self, session: CallerSession) -> None:
        """Store what the pipeline published while nobody owned the session; pick up barge state and a supervisor's
        end that nobody carried out."""
        history = await store_history(self.services, session.tenant_id, session.conversation_id)
        if history is None:
            return
        session.last_seq = max(session.last_seq, history.last_seq)
        controls = [e.get("action") for e in history.events if e.get("type") == "control"]
        barges = [a for a in controls if a in ("barge", "release")]
        session.barged = bool(barges) and barges[-1] == "barge"
        if "end" in controls:
            await session.end("completed", "supervisor_ended")

    # --- loops -----------------------------------------------------------------------------------------
    async def _renew_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.lease / 3)
            owned = [s for s in self.services.sessions.values() if s.registered and not s.ended and not s.released]
            for start in range(0, len(owned), RENEW_BATCH):
                await self._renew(owned[start:start + RENEW_BATCH])

    async def _renew(self, sessions: list[CallerSession]) -> None:
        try:
            results = await self.registry.renew(self.node_id, [
                Renewal(s.session_id, s.conversation_id, s.agent_ms) for s in sessions], self.lease, self.grace)
        except Exception as exc:
            log.warning("renewing %d session leases failed (%s); retrying", len(sessions), exc)
            return
        for session, kept in zip(sessions, results, strict=True):
            if not kept and not session.ended and not session.released:
                log.info("session %s is owned elsewhere now; dropping it here", session.session_id)
                session.drop("session resumed elsewhere")

    async def _sweep_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.services.settings.session_sweep_seconds)
            try:
                await self.sweep()
            except Exception as exc:
                log.warning("session sweep failed (%s)", exc)

    async def sweep(self) -> int:
        """End the conversations of sessions nobody owns or resumes any more; returns how many this node claimed."""
        claimed = 0
        for session_id in await self.registry.due(SWEEP_BATCH):
            local = self.services.sessions.get(session_id)
            if local is not None and not local.released:
                continue  # ours: the renewal takes the lease back
            record = await self.registry.claim_expired(session_id, self.node_id, self.lease)
            if record is not None:
                claimed += 1
                self.services.spawn(self.end_orphan(record))
        return claimed

    async def end_orphan(self, record: SessionRecord) -> None:
        try:
            await self._end_orphan(record)
        except Exception as exc:  # the claim's lease lapses and a later sweep tries again
            log.warning("conversation %s: ending session %s failed (%s)", record.conversation_id, record.session_id, exc)

    async def _end_orphan(self, record: SessionRecord) -> None:
        services = self.services
        tenant_id, conversation_id = record.tenant_id, record.conversation_id
        conversation = await services.store.get_conversation(tenant_id, conversation_id)
        if conversation is not None and conversation.get("status") == "in_progress":
            history = await store_history(services, tenant_id, conversation_id)
            ended_by_supervisor = history is not None and any(
                e.get("type") == "control" and e.get("action") == "end" for e in history.events)
            status, reason = ("completed", "supervisor_ended") if ended_by_supervisor else (
                "abandoned", "resume_expired" if record.resume_before_ms else "node_lost")
            ended = await services.store.end_conversation(tenant_id, conversation_id, status=status, reason=reason)
            log.info("conversation %s of session %s ended as %s (%s) by the sweep of %s", conversation_id,
                     record.session_id, status, reason, self.node_id)
            try:
                await services.broker.publish_event(conversation_id, {
                    "type": "ended", "conversationId": conversation_id, "tenantId": tenant_id, "status": status,
                    "reason": reason, "endedAt": (ended or {}).get("endedAt") or now_iso(),
                    "durationSeconds": (ended or {}).get("durationSeconds", 0)}, lifecycle=True)
                await services.broker.expire_history(conversation_id)
            except Exception:
                log.exception("conversation %s: publishing its end failed", conversation_id)
        await self.registry.finish(record.session_id, conversation_id, self.node_id)


def recover_audio(session: CallerSession, frames: list[dict[str, Any]], agent_ms: int) -> None:
    """A resumed session: continue the caller timeline where the audiolog's last caller frame ends, record what the
    audiolog holds (its last 60 s), and queue the agent frames after the last one the caller got (bounded by the
    session's queue). `frames` (the audiolog) and the live frames held meanwhile may overlap: each counts once."""
    from hub.voice.caller import CALLER_FRAME_BYTES

    held, session.held_frames = session.held_frames or [], None
    session.agent_ms = agent_ms
    seen: set[tuple[Any, Any, Any]] = set()
    tracks: dict[str, list[tuple[int, bytes, int]]] = {"caller": [], "agent": []}
    for frame in [*frames, *held]:
        track, data, stamp = frame.get("track"), frame.get("data"), frame.get("timestampMs")
        key = (track, frame.get("frame"), stamp)
        if track not in tracks or not isinstance(data, bytes) or not isinstance(stamp, int) or key in seen:
            continue
        seen.add(key)
        tracks[str(track)].append((stamp, data, int(frame.get("frame") or 0)))
    for stamp, data, number in sorted(tracks["caller"], key=lambda f: f[0]):
        session.record("caller", data, stamp)
        session.samples_in = max(session.samples_in, stamp * 16 + len(data) // 2)
        session.frames_in = max(session.frames_in, number + max(1, len(data) // CALLER_FRAME_BYTES))
    for stamp, data, _ in sorted(tracks["agent"], key=lambda f: f[0]):
        session.record("agent", data, stamp)
        if stamp > agent_ms:
            session.pending_audio.append((stamp, data))


async def store_history(services: VoiceServices, tenant_id: str, conversation_id: str) -> History | None:
    """Store the final turns, the latest costs and analysis and the status patches that history holds (all
    idempotent: turns are keyed by turnId); None if history could not be read."""
    store = services.store
    try:
        history = await services.broker.history(conversation_id, 0)
    except Exception as exc:
        log.warning("conversation %s: history unavailable (%s)", conversation_id, exc)
        return None
    latest: dict[str, dict[str, Any]] = {}
    try:
        for event in history.events:
            kind = event.get("type")
            if kind == "transcript" and event.get("isFinal"):
                await store.add_turn(tenant_id, conversation_id, transcription(event))
            elif kind == "status" and isinstance(event.get("patch"), dict):
                await store.update_conversation(tenant_id, conversation_id, event["patch"])
            elif kind in ("cost", "analysis"):
                latest[str(kind)] = event
        if isinstance(latest.get("cost", {}).get("costs"), dict):
            await store.set_costs(tenant_id, conversation_id, latest["cost"]["costs"])
        if isinstance(latest.get("analysis", {}).get("analysis"), dict):
            await store.set_analysis(tenant_id, conversation_id, latest["analysis"]["analysis"])
    except Exception:
        log.exception("conversation %s: storing what history holds failed", conversation_id)
    return history


def _elapsed(conversation: dict[str, Any]) -> float:
    """Seconds since the conversation started (0 if its start is unreadable)."""
    try:
        started = datetime.fromisoformat(str(conversation.get("startedAt")).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (datetime.now(UTC) - started).total_seconds())
