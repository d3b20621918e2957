"""`/hubs/voice`: the VoiceHub class. `agentId` in the query selects caller mode, else monitor mode."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

import orjson
from starlette.requests import HTTPConnection

from hub.auth.principal import AuthError, Principal
from hub.signalr.endpoint import Unauthorized
from hub.signalr.hub import Hub, HubError, ReplyThen, hub_method
from hub.voice.caller import END_REASONS, CallerSession
from hub.voice.control import barge, end_conversation, release_barge, supervisor_audio, whisper
from hub.voice.monitor import MonitorState
from hub.voice.options import conversation_id_arg, parse_filter, parse_options
from hub.voice.services import VoiceServices

log = logging.getLogger("hub.voice")

MAX_METADATA_BYTES = 4096


def hub_token(conn: HTTPConnection) -> str:
    header = conn.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return conn.query_params.get("access_token", "")


def voice_authenticator(services: VoiceServices) -> Any:
    """JWT only (API keys get 401), from the header or `access_token`; the mode's scope or 403."""

    async def authenticate(conn: HTTPConnection) -> Principal:
        token = hub_token(conn)
        if not token or token.startswith("vsnp_"):
            raise Unauthorized(401)
        try:
            principal = services.tokens.verify(token)
        except AuthError:
            raise Unauthorized(401) from None
        caller = any(key.lower() == "agentid" for key in conn.query_params)
        if not principal.has("voice:session" if caller else "monitor:read"):
            raise Unauthorized(403)
        return principal

    return authenticate


class VoiceHub(Hub):
    services: VoiceServices  # set on the subclass made by `voice_hub_factory`

    def __init__(self) -> None:
        self.caller: CallerSession | None = None
        self.monitor: MonitorState | None = None

    @property
    def principal(self) -> Principal:
        user = self.context.user
        assert isinstance(user, Principal)
        return user

    async def on_connected(self) -> None:
        query = self.context.query
        agent_id = query.get("agentid")
        if agent_id is None:
            self.monitor = MonitorState(self.services, self.context, self.principal)
            return
        if not agent_id.startswith("agt_") or len(agent_id) > 100:
            raise HubError("agentId must be an agent id (agt_...).")
        session_id = query.get("sessionid")
        if session_id:
            self.services.keeper.start()
            session = self.services.sessions.get(session_id)
            if session is None:  # held by another node, or by none since a drain: take it over
                session = await self.services.keeper.resume(self.principal, session_id)
            elif session.tenant_id != self.principal.tenant_id or session.ended:
                raise HubError(f"Session '{session_id}' is unknown or has expired.")
            elif session.connection is not None:
                session.connection.close("Connection closed with an error. HubException: session resumed elsewhere")
            self.caller = session
            session.attach(self.context, resumed=True)
            return
        self.services.keeper.start()  # normally started with the app; a no-op then
        metadata = _metadata(query.get("metadata"))
        self.caller = await CallerSession.start(self.services, self.principal, agent_id, metadata)
        self.caller.attach(self.context, resumed=False)

    async def on_disconnected(self, error: BaseException | None) -> None:
        if self.caller is not None and self.caller.connection is self.context:
            self.caller.detach(draining=self.context.manager.draining)
        if self.monitor is not None:
            self.monitor.close()

    def _caller(self) -> CallerSession:
        if self.caller is None:
            raise HubError("This method is for caller connections (connect with agentId).")
        return self.caller

    def _monitor(self) -> MonitorState:
        if self.monitor is None:
            raise HubError("This method is for monitor connections (connect without agentId).")
        return self.monitor

    # --- caller mode -------------------------------------------------------------------------------------
    @hub_method("SendAudioAsync", requires="voice:session")
    async def send_audio(self, audio: Any) -> None:
        await self._caller().send_audio(audio)

    @hub_method("SendDtmfAsync", requires="voice:session")
    async def send_dtmf(self, digit: Any) -> None:
        await self._caller().send_dtmf(digit)

    @hub_method("EndSessionAsync", requires="voice:session")
    async def end_session(self, reason: Any) -> ReplyThen:
        if reason not in END_REASONS:
            raise HubError(f"reason must be one of {', '.join(END_REASONS)}.")
        await self._caller().end("completed", reason, close=False)
        context = self.context
        return ReplyThen(None, lambda: context.close(None, allow_reconnect=False))

    @hub_method("RequestReconnectionAsync", requires="voice:session")
    def request_reconnection(self) -> dict[str, Any]:
        return self._caller().request_reconnection()

    # --- monitor mode ------------------------------------------------------------------------------------
    @hub_method("ListConversations", requires="monitor:read")
    async def list_conversations(self, filter: Any = None) -> list[dict[str, Any]]:
        return await self._monitor().list_conversations(parse_filter(filter))

    @hub_method("Subscribe", requires="monitor:read")
    async def subscribe(self, conversation_id: Any, options: Any = None) -> ReplyThen:
        return await self._monitor().subscribe(conversation_id_arg(conversation_id), options)

    @hub_method("Unsubscribe", requires="monitor:read")
    def unsubscribe(self, conversation_id: Any) -> None:
        self._monitor().unsubscribe(conversation_id_arg(conversation_id))

    @hub_method("UpdateSubscription", requires="monitor:read")
    def update_subscription(self, conversation_id: Any, options: Any) -> None:
        self._monitor().update(conversation_id_arg(conversation_id), options)

    @hub_method("SubscribeAll", requires="monitor:read")
    async def subscribe_all(self, filter: Any = None, options: Any = None) -> list[dict[str, Any]]:
        if isinstance(filter, dict) and "options" in filter:  # options may also ride inside the filter
            filter = dict(filter)
            inner = filter.pop("options")
            options = inner if options is None else options
        parsed = parse_options(options)
        if parsed.audio != "none":
            raise HubError("SubscribeAll never carries audio; Subscribe to a conversation to listen.")
        return await self._monitor().subscribe_all(parse_filter(filter), parsed)

    @hub_method("UnsubscribeAll", requires="monitor:read")
    def unsubscribe_all(self) -> None:
        self._monitor().unsubscribe_all()

    @hub_method("GetPresence", requires="monitor:read")
    async def get_presence(self, conversation_id: Any) -> list[dict[str, Any]]:
        monitor = self._monitor()
        conversation_id = conversation_id_arg(conversation_id)
        await monitor.conversation(conversation_id)
        return await self.services.presence.snapshot(conversation_id)

    @hub_method("Whisper", requires="monitor:control")
    async def whisper(self, conversation_id: Any, text: Any) -> None:
        await whisper(self._monitor(), conversation_id_arg(conversation_id), text)

    @hub_method("Barge", requires="monitor:control")
    async def barge(self, conversation_id: Any) -> None:
        await barge(self._monitor(), conversation_id_arg(conversation_id))

    @hub_method("ReleaseBarge", requires="monitor:control")
    async def release_barge(self, conversation_id: Any) -> None:
        await release_barge(self._monitor(), conversation_id_arg(conversation_id))

    @hub_method("SendSupervisorAudio", requires="monitor:control")
    async def send_supervisor_audio(self, conversation_id: Any, audio: Any) -> None:
        await supervisor_audio(self._monitor(), conversation_id_arg(conversation_id), audio)

    @hub_method("EndConversation", requires="monitor:control")
    async def end_conversation(self, conversation_id: Any, reason: Any = "supervisor_ended") -> None:
        await end_conversation(self._monitor(), conversation_id_arg(conversation_id), reason)


def _metadata(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    if len(raw) > MAX_METADATA_BYTES:
        raise HubError(f"metadata is longer than {MAX_METADATA_BYTES} bytes.")
    try:
        value = orjson.loads(unquote(raw) if raw.startswith("%7B") else raw)
    except orjson.JSONDecodeError:
        raise HubError("metadata must be URL-encoded JSON.") from None
    if not isinstance(value, dict):
        raise HubError("metadata must be a JSON object.")
    return value


def voice_hub_factory(services: VoiceServices) -> type[VoiceHub]:
    return type("BoundVoiceHub", (VoiceHub,), {"services": services})
