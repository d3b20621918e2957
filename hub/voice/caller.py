"""Caller mode (Voisnap-compatible VoiceHub, contract section 2): one session per conversation.

The caller's node owns the conversation: it creates it in the store, publishes caller audio and
lifecycle events through the broker, persists final turns and cost/analysis updates coming from the
agent pipeline, forwards agent audio and transcripts to the caller, and ends the conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hub.audio.pcm import AudioInvalid, as_int16, payload_from_argument, to_bytes
from hub.audio.resample import Resampler
from hub.audio.timeline import PlayoutClock
from hub.broker.base import BrokerUnavailable
from hub.recording.recorder import Recorder, recording_path
from hub.signalr.hub import HubError
from hub.signalr.ids import new_id
from hub.voice.payloads import now_iso, transcription
from hub.voice.sessions import TAKEOVER
from protocol.json_codec import iso_z

if TYPE_CHECKING:
    from hub.auth.principal import Principal
    from hub.signalr.context import HubConnectionContext
    from hub.voice.services import VoiceServices

log = logging.getLogger("hub.voice")

END_REASONS = ("user_ended", "timeout", "transfer_complete")
DTMF_DIGITS = frozenset("0123456789*#")
INPUT_FORMAT = {"encoding": "pcm_s16le", "sampleRate": 16000, "channels": 1}
OUTPUT_FORMAT = {"encoding": "pcm_s16le", "sampleRate": 24000, "channels": 1}
CALLER_FRAME_BYTES = 640  # 20 ms at 16 kHz
STORE_UPDATE_TYPES = ("cost", "analysis", "status")
DTMF_PER_SECOND = 10  # digits per caller and second; more answer Error{rate_limited} (a flood would trim history)
STORE_RETRY_SECONDS = 60.0  # how long a final turn is retried while the store is unavailable
AFTER_END_SECONDS = 30.0
"""How long the caller's node keeps storing the pipeline's cost and analysis events after the call ended
(a pipeline usually publishes its analysis once it has seen `ended`)."""


class CallerSession:
    def __init__(self, services: VoiceServices, principal: Principal, conversation: dict[str, Any], *,
                 session_id: str | None = None) -> None:
        self.services = services
        self.principal = principal
        self.tenant_id = principal.tenant_id
        self.conversation = conversation
        self.conversation_id: str = conversation["id"]
        self.agent_id: str = conversation["agentId"]
        self.session_id = session_id or "sess_" + new_id()
        self.connection: HubConnectionContext | None = None
        self.started = time.monotonic()
        self.samples_in = 0  # caller samples received (timeline of the caller track)
        self.frames_in = 0
        self.resume_before: float | None = None
        self.resume_before_ms = 0  # the same deadline in epoch ms (shared with other nodes through the registry)
        self.ended = False
        self.released = False  # dropped here without ending: resumed on another node, or handed off at drain
        self.registered = False  # in the session registry (hub/voice/sessions.py)
        self.agent_ms = -1  # timestampMs of the last agent frame handed to the caller's connection
        self.pending_audio: deque[tuple[int, bytes]] = deque(maxlen=services.settings.queued_agent_audio_frames)
        self.held_frames: list[dict[str, Any]] | None = None  # live frames held while a resumed session catches up
        self._expiry: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._bucket = (time.monotonic(), 0)
        self._dtmf_bucket = (time.monotonic(), 0)
        self._supervisor_resampler = Resampler(16000, 24000)
        self.barged = False
        self.feed = services.feeds.feed(self.conversation_id)
        self.feed.listeners.append(self)
        self._control = services.broker.subscribe_control(self.conversation_id, self._on_control)
        self.recorder: Recorder | None = None
        if services.settings.recordings:
            self.recorder = Recorder(recording_path(services.settings.data_dir, self.tenant_id, self.conversation_id))
        self._agent_clock = PlayoutClock(24000)
        self.last_seq = 0  # highest history seq this session saw on its feed (for catching up after a broker gap)

    # --- lifecycle ------------------------------------------------------------------------------------
    @classmethod
    async def start(cls, services: VoiceServices, principal: Principal, agent_id: str,
                    metadata: dict[str, Any]) -> CallerSession:
        channel = metadata.get("channel", "webrtc")
        conversation = await services.store.create_conversation(
            principal.tenant_id, agent_id=agent_id, channel=channel, direction=metadata.get("direction", "inbound"),
            metadata={k: v for k, v in metadata.items() if k not in ("channel", "direction")} or None)
        session = cls(services, principal, conversation)
        services.sessions[session.session_id] = session
        await services.keeper.register(session)
        await session.feed.ready()
        await services.broker.publish_event(session.conversation_id, {
            "type": "started", "conversationId": session.conversation_id, "tenantId": session.tenant_id,
            "agentId": agent_id, "conversation": conversation, "timestamp": now_iso()}, lifecycle=True)
        return session

    def attach(self, connection: HubConnectionContext, *, resumed: bool) -> None:
        self.connection = connection
        self.resume_before = None
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        connection.send_message(_event("SessionStarted", {
            "sessionId": self.session_id, "conversationId": self.conversation_id, "agentId": self.agent_id,
            "resumed": resumed, "inputFormat": INPUT_FORMAT, "outputFormat": OUTPUT_FORMAT}))
        while self.pending_audio:
            stamp, pcm = self.pending_audio.popleft()
            connection.send_message(_event("AudioReceived", pcm))
            self.agent_ms = max(self.agent_ms, stamp)

    def detach(self, *, draining: bool = False) -> None:
        """The caller's connection ended: keep the session until resume_before, or end it now. A draining node with
        a shared registry hands the session off instead: the caller resumes it on another node."""
        self.connection = None
        if self.ended or self.released:
            return
        keeper = self.services.keeper
        if draining and keeper.can_hand_off(self):
            keeper.hand_off(self)
            return
        now = time.monotonic()
        if self.resume_before is not None and self.resume_before > now:
            loop = asyncio.get_running_loop()
            self._expiry = loop.call_later(self.resume_before - now, self._expired)
            keeper.update(self)  # what the caller got, for a node that resumes it
            return
        self.services.spawn(self.end("abandoned", "disconnected", abandon=True))

    def _expired(self) -> None:
        self._expiry = None
        if self.connection is None and not self.ended:
            self.services.spawn(self.end("abandoned", "resume_expired", abandon=True))

    def request_reconnection(self) -> dict[str, Any]:
        window = self.services.settings.resume_window
        self.resume_before = time.monotonic() + window
        deadline = (datetime.now(UTC) + timedelta(seconds=window)).replace(microsecond=0)
        self.resume_before_ms = int(deadline.timestamp() * 1000)
        self.services.keeper.update(self, resume_before_ms=self.resume_before_ms)
        return {"sessionId": self.session_id, "resumeBefore": iso_z(deadline)}

    def drop(self, error: str | None) -> None:
        """Forget the session on this node without ending the conversation (another node owns it now, or may resume
        it). Its recording part is discarded: the new owner records the rest (docs/voicehub.md)."""
        if self.ended or self.released:
            return
        self.released = True
        services = self.services
        if services.sessions.get(self.session_id) is self:
            del services.sessions[self.session_id]
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.abort()
        connection, self.connection = self.connection, None
        if connection is not None and error is not None:
            connection.close(f"Connection closed with an error. HubException: {error}")
        self.release_feed()

    async def control_ready(self) -> None:
        wait = getattr(self._control, "ready", None)
        if wait is not None:
            await wait()

    async def end(self, status: str, reason: str, *, close: bool = True, abandon: bool = False) -> None:
        """End the conversation. `close=False` leaves closing the caller's connection to the caller of this
        method (EndSessionAsync closes it right after its Completion went out). `abandon`: only if this node still
        owns the session (the caller may have resumed it on another node)."""
        if self.ended or self.released:
            return
        self.ended = True
        services = self.services
        if abandon and not await services.keeper.may_abandon(self):
            self.ended = False  # resumed on another node meanwhile: not ours to end
            self.drop("session resumed elsewhere")
            return
        if services.sessions.get(self.session_id) is self:
            del services.sessions[self.session_id]
        services.ended_sessions.add(self)
        ended = await services.store.end_conversation(self.tenant_id, self.conversation_id, status=status, reason=reason)
        duration = (ended or {}).get("durationSeconds", round(time.monotonic() - self.started))
        ended_at = (ended or {}).get("endedAt") or now_iso()
        try:
            await services.broker.publish_event(self.conversation_id, {
                "type": "ended", "conversationId": self.conversation_id, "tenantId": self.tenant_id,
                "status": status, "reason": reason, "endedAt": ended_at, "durationSeconds": duration}, lifecycle=True)
            await services.broker.expire_history(self.conversation_id)
        except Exception:
            log.exception("conversation %s: publishing its end failed", self.conversation_id)
        self._finish_recording()
        await services.keeper.finished(self)
        connection = self.connection
        if connection is not None:
            connection.send_message(_event("SessionEnded", {
                "sessionId": self.session_id, "conversationId": self.conversation_id, "reason": reason,
                "status": status, "durationSeconds": duration}))
            if close:
                connection.close(None, allow_reconnect=False)
        close_control = getattr(self._control, "close", None)
        if close_control is not None:
            close_control()
        self._linger = asyncio.get_running_loop().call_later(AFTER_END_SECONDS, self.release_feed)

    def release_feed(self) -> None:
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self.services.ended_sessions.discard(self)
        if self in self.feed.listeners:
            self.feed.listeners.remove(self)
        self.services.feeds.release(self.conversation_id)
        close = getattr(self._control, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                self.services.spawn(result)

    def record(self, track: str, pcm: bytes, timestamp_ms: int) -> None:
        recorder = self.recorder
        if recorder is None:
            return
        try:
            recorder.add("caller" if track == "caller" else "agent", pcm, timestamp_ms)
        except (ValueError, RuntimeError) as exc:  # past the maximum length, or a bad frame: stop recording
            log.warning("conversation %s: recording stopped: %s", self.conversation_id, exc)
            recorder.abort()
            self.recorder = None

    def _finish_recording(self) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            self.services.spawn(self._save_recording(recorder))

    async def _save_recording(self, recorder: Recorder) -> None:
        """Encode the MP3 off the event loop, then record where it is (relative to the data directory)."""
        try:
            result = await asyncio.to_thread(recorder.finish)
        except Exception:
            log.exception("conversation %s: encoding the recording failed", self.conversation_id)
            return
        if result.duration_seconds <= 0:
            return
        path = result.path
        with contextlib.suppress(ValueError):
            path = path.relative_to(self.services.settings.data_dir)
        await self.services.store.set_recording(self.tenant_id, self.conversation_id, path=str(path),
                                                duration_seconds=result.duration_seconds)

    async def shutdown(self) -> None:
        """Node shutdown: with a shared registry another node may resume the session; otherwise it ends here."""
        if self.services.keeper.can_hand_off(self):
            self.services.keeper.hand_off(self)
        else:
            await self.end("abandoned", "server_shutdown")

    # --- caller -> hub ---------------------------------------------------------------------------------
    def _rate_ok(self, size: int) -> bool:
        start, used = self._bucket
        now = time.monotonic()
        if now - start >= 1.0:
            self._bucket = (now, size)
            return True
        if used + size > self.services.settings.max_audio_bytes_per_second:
            return False
        self._bucket = (start, used + size)
        return True

    async def send_audio(self, argument: Any) -> None:
        try:
            data = payload_from_argument(argument)
        except AudioInvalid as exc:
            self.error("audio_invalid", str(exc))
            return
        if not self._rate_ok(len(data)):
            self.error("rate_limited", "Audio is arriving faster than 3x real time; this chunk was dropped.")
            return
        timestamp = self.samples_in // 16
        self.samples_in += len(data) // 2
        self.record("caller", data, timestamp)
        frame = self.frames_in
        self.frames_in += max(1, len(data) // CALLER_FRAME_BYTES)
        try:
            await self.services.broker.publish_audio(self.conversation_id, {
                "conversationId": self.conversation_id, "track": "caller", "frame": frame, "encoding": "pcm_s16le",
                "sampleRate": 16000, "channels": 1, "timestampMs": timestamp, "data": data})
        except Exception as exc:
            self.error("broker_unavailable", f"Audio could not be delivered: {exc}")

    async def send_dtmf(self, digit: Any) -> None:
        if not isinstance(digit, str) or len(digit) != 1 or digit not in DTMF_DIGITS:
            raise HubError("DTMF digit must be one of 0-9, * or #.")
        start, used = self._dtmf_bucket
        now = time.monotonic()
        if now - start >= 1.0:
            start, used = now, 0
        if used >= DTMF_PER_SECOND:
            self.error("rate_limited", f"More than {DTMF_PER_SECOND} DTMF digits per second; this digit was dropped.")
            return
        self._dtmf_bucket = (start, used + 1)
        broker = self.services.broker
        try:
            await broker.publish_event(self.conversation_id, {
                "type": "dtmf", "conversationId": self.conversation_id, "digit": digit, "timestamp": now_iso()})
            await broker.publish_control(self.conversation_id, {"type": "dtmf", "conversationId": self.conversation_id,
                                                                "digit": digit})
        except BrokerUnavailable as exc:  # a Redis outage: a documented error, not a server failure
            raise HubError(f"The digit could not be delivered (broker unavailable: {exc}).") from None

    def error(self, code: str, message: str) -> None:
        if self.connection is not None:
            self.connection.send_message(_event("Error", {"code": code, "message": message}))

    # --- pipeline -> caller ------------------------------------------------------------------------------
    def on_feed_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        seq = event.get("seq")
        if isinstance(seq, int) and seq > self.last_seq:
            self.last_seq = seq
        if self.ended:
            if kind in ("cost", "analysis"):
                self.services.spawn(self._apply_update(event))
            return
        if kind == "transcript":
            turn = transcription(event)
            if self.connection is not None:
                self.connection.send_message(_event("Transcription", turn))
            if turn["isFinal"]:
                self.services.spawn(self._persist_turn(turn))
        elif kind in STORE_UPDATE_TYPES:
            self.services.spawn(self._apply_update(event))

    async def _persist_turn(self, turn: dict[str, Any]) -> None:
        """Store a final turn, retrying while the store (Redis) is unavailable: acknowledged turns are never lost."""
        delay = 0.2
        deadline = time.monotonic() + STORE_RETRY_SECONDS
        while True:
            try:
                await self.services.store.add_turn(self.tenant_id, self.conversation_id, turn)
                return
            except Exception:
                if time.monotonic() > deadline:
                    log.exception("conversation %s: storing turn %s failed", self.conversation_id, turn.get("turnId"))
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def on_feed_gap(self, reason: str) -> None:
        """The broker may have lost events (outage): store the final turns history holds past what this session saw."""
        self.services.spawn(self._catch_up(self.last_seq))

    async def _catch_up(self, after_seq: int) -> None:
        delay = 0.2
        deadline = time.monotonic() + STORE_RETRY_SECONDS
        while True:
            try:
                history = await self.services.broker.history(self.conversation_id, after_seq)
                break
            except Exception:
                if time.monotonic() > deadline:
                    log.warning("conversation %s: history unavailable, turns after seq %d may be missing from the store",
                                self.conversation_id, after_seq)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        for event in history.events:
            if event.get("type") == "transcript" and event.get("isFinal"):
                await self._persist_turn(transcription(event))

    async def _apply_update(self, event: dict[str, Any]) -> None:
        store = self.services.store
        kind = event.get("type")
        if kind == "cost" and isinstance(event.get("costs"), dict):
            await store.set_costs(self.tenant_id, self.conversation_id, event["costs"])
        elif kind == "analysis" and isinstance(event.get("analysis"), dict):
            await store.set_analysis(self.tenant_id, self.conversation_id, event["analysis"])
        elif kind == "status" and isinstance(event.get("patch"), dict):
            await store.update_conversation(self.tenant_id, self.conversation_id, event["patch"])
        conversation = await store.get_conversation(self.tenant_id, self.conversation_id)
        if conversation is not None and not self.ended:
            await self.services.broker.publish_event(self.conversation_id, {
                "type": "updated", "conversationId": self.conversation_id, "tenantId": self.tenant_id,
                "conversation": conversation, "timestamp": now_iso()}, lifecycle=True)

    def on_feed_audio(self, frame: dict[str, Any]) -> None:
        if self.held_frames is not None:
            self.held_frames.append(frame)
            return
        if frame.get("track") != "agent" or self.barged:
            return
        data = frame.get("data")
        if isinstance(data, bytes | bytearray | memoryview):
            pcm = bytes(data)
            stamp = frame.get("timestampMs")
            if not isinstance(stamp, int):
                stamp = self._agent_clock.stamp(int((time.monotonic() - self.started) * 1000), len(pcm) // 2)
            self.record("agent", pcm, stamp)
            self._play(pcm, stamp)

    def _play(self, pcm24k: bytes, stamp: int = -1) -> None:
        if self.connection is not None:
            self.connection.send_message(_event("AudioReceived", pcm24k), drop_key=(self.conversation_id, "playout"))
            self.agent_ms = max(self.agent_ms, stamp)
        else:
            self.pending_audio.append((stamp, pcm24k))

    def _on_control(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "supervisor_audio" and isinstance(message.get("data"), bytes | bytearray):
            samples = as_int16(bytes(message["data"]))
            self._play(to_bytes(self._supervisor_resampler.process(samples)))
        elif kind == "barge":
            self.barged = True
        elif kind == "release":
            self.barged = False
        elif kind == "end":
            reason = str(message.get("reason") or "supervisor_ended")[:100]
            self.services.spawn(self.end("completed", reason))
        elif kind == TAKEOVER and message.get("sessionId") == self.session_id \
                and message.get("node") != self.services.keeper.node_id:
            log.info("session %s resumed on %s; dropping it here", self.session_id, message.get("node"))
            self.drop("session resumed elsewhere")


def _event(target: str, payload: Any) -> Any:
    from protocol import InvocationMessage

    return InvocationMessage(target, [payload])
