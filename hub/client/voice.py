"""Typed async clients for `/hubs/voice`: `VoiceCaller` (caller mode) and `VoiceMonitor` (monitor mode).

    token = await fetch_token("http://127.0.0.1:8000", "vsnp_live_...", scopes=["voice:session"])
    caller = await VoiceCaller.connect("http://127.0.0.1:8000", token, agent_id="agt_demo")
    await caller.send_audio(pcm16_16k_bytes)
    await caller.end("user_ended")

    monitor = await VoiceMonitor.connect("http://127.0.0.1:8000", token_with_monitor_read, msgpack=True)
    snapshot = await monitor.subscribe(caller.conversation_id, {"audio": "mixed", "encoding": "mulaw",
                                                                "sampleRate": 8000})
    turn = await monitor.wait_for("TranscriptTurn", lambda t: t["isFinal"])

Events are kept in order in `log.events` (name, payload) and can be awaited with `wait_for(name, predicate)`.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import httpx

from hub.client.signalr import HubClient, HubError, tls_context

Predicate = Callable[[Any], bool]
MAX_KEPT_EVENTS = 10_000  # events kept in `events` per client; older ones are forgotten


async def fetch_token(base_url: str, api_key: str, *, scopes: list[str] | None = None,
                      conversation_id: str | None = None, ttl_seconds: int = 3600) -> str:
    """Exchange an API key for a hub JWT (POST /api/v1/auth/token)."""
    body: dict[str, Any] = {"ttlSeconds": ttl_seconds}
    if scopes is not None:
        body["scopes"] = scopes
    if conversation_id is not None:
        body["conversationId"] = conversation_id
    async with httpx.AsyncClient(timeout=15, verify=tls_context()) as http:
        response = await http.post(base_url.rstrip("/") + "/api/v1/auth/token", json=body,
                                   headers={"Authorization": f"Bearer {api_key}"})
    if response.status_code != 200:
        raise HubError(f"token request answered {response.status_code}: {response.text}")
    return str(response.json()["accessToken"])


class EventLog:
    """The events a client received, in order, with waiting."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Condition()

    def record(self, name: str, payload: Any) -> None:
        self.events.append((name, payload))
        if len(self.events) > MAX_KEPT_EVENTS:
            del self.events[: len(self.events) - MAX_KEPT_EVENTS]
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def of(self, name: str) -> list[Any]:
        return [payload for event, payload in self.events if event == name]

    async def wait_for(self, name: str, predicate: Predicate | None = None, seconds: float = 10.0) -> Any:
        """The first recorded `name` event matching `predicate` (already received or future)."""

        def find() -> Any:
            for event, payload in self.events:
                if event == name and (predicate is None or predicate(payload)):
                    return payload
            return None

        async def wait() -> Any:
            async with self._changed:
                while (found := find()) is None:
                    await self._changed.wait()
                return found

        return await asyncio.wait_for(wait(), seconds)


class _VoiceClient:
    EVENTS: tuple[str, ...] = ()

    def __init__(self, client: HubClient, log: EventLog) -> None:
        self.hub = client
        self.log = log

    @classmethod
    async def _open(cls, base_url: str, token: str, query: dict[str, str], msgpack: bool) -> tuple[HubClient, EventLog]:
        log = EventLog()
        handlers = {name: _recorder(log, name) for name in cls.EVENTS}
        client = await HubClient.connect(base_url.rstrip("/") + "/hubs/voice", token=token, query=query,
                                         msgpack=msgpack, handlers=handlers)
        return client, log

    @property
    def msgpack(self) -> bool:
        return self.hub.protocol.name == "messagepack"

    def audio_argument(self, pcm: bytes) -> str | bytes:
        """`bin` over MessagePack, base64 over JSON."""
        return pcm if self.msgpack else base64.b64encode(pcm).decode()

    async def wait_for(self, name: str, predicate: Predicate | None = None, seconds: float = 10.0) -> Any:
        return await self.log.wait_for(name, predicate, seconds)

    async def close(self) -> None:
        await self.hub.close()


def _recorder(log: EventLog, name: str) -> Callable[[list[Any]], None]:
    def handler(arguments: list[Any]) -> None:
        log.record(name, arguments[0] if arguments else None)

    return handler


def audio_bytes(value: Any) -> bytes:
    """An `AudioReceived` argument or `AudioFrame.data`: bytes over MessagePack, base64 over JSON."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return base64.b64decode(value)
    raise TypeError(f"not audio: {type(value).__name__}")


class VoiceCaller(_VoiceClient):
    EVENTS = ("SessionStarted", "AudioReceived", "Transcription", "SessionEnded", "Error")

    def __init__(self, client: HubClient, log: EventLog, session: dict[str, Any]) -> None:
        super().__init__(client, log)
        self.session = session

    @classmethod
    async def connect(cls, base_url: str, token: str, *, agent_id: str = "agt_simulated",
                      metadata: dict[str, Any] | None = None, session_id: str | None = None,
                      msgpack: bool = False, seconds: float = 15.0) -> VoiceCaller:
        """Open a caller session (or resume one with `session_id`); returns after `SessionStarted`."""
        query = {"agentId": agent_id}
        if metadata:
            query["metadata"] = json.dumps(metadata, separators=(",", ":"))
        if session_id:
            query["sessionId"] = session_id
        client, log = await cls._open(base_url, token, query, msgpack)
        try:
            started = await _first(log, "SessionStarted", client, seconds)
        except BaseException:
            await client.close()
            raise
        return cls(client, log, started)

    @property
    def conversation_id(self) -> str:
        return str(self.session["conversationId"])

    @property
    def session_id(self) -> str:
        return str(self.session["sessionId"])

    async def send_audio(self, pcm16_16k: bytes) -> None:
        await self.hub.send("SendAudioAsync", self.audio_argument(pcm16_16k))

    async def send_dtmf(self, digit: str) -> None:
        await self.hub.invoke("SendDtmfAsync", digit)

    async def request_reconnection(self) -> dict[str, Any]:
        result = await self.hub.invoke("RequestReconnectionAsync")
        assert isinstance(result, dict)
        return result

    async def end(self, reason: str = "user_ended", seconds: float = 15.0) -> dict[str, Any]:
        """EndSessionAsync; returns the SessionEnded payload."""
        await self.hub.invoke("EndSessionAsync", reason, seconds=seconds)
        ended = await self.wait_for("SessionEnded", seconds=seconds)
        await self.hub.closed.wait()
        assert isinstance(ended, dict)
        return ended

    def agent_audio(self) -> bytes:
        return b"".join(audio_bytes(chunk) for chunk in self.log.of("AudioReceived"))

    def final_turns(self) -> list[dict[str, Any]]:
        return [t for t in self.log.of("Transcription") if t.get("isFinal")]


class VoiceMonitor(_VoiceClient):
    EVENTS = ("ConversationStarted", "ConversationUpdated", "ConversationEnded", "TranscriptTurn", "AudioFrame",
              "AudioLevel", "Dtmf", "Control", "Presence", "Gap")

    @classmethod
    async def connect(cls, base_url: str, token: str, *, msgpack: bool = False) -> VoiceMonitor:
        client, log = await cls._open(base_url, token, {}, msgpack)
        return cls(client, log)

    async def list_conversations(self, filter: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        result = await self.hub.invoke("ListConversations", *([filter] if filter is not None else []))
        assert isinstance(result, list)
        return result

    async def subscribe(self, conversation_id: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """Returns the snapshot; live events follow in `log`."""
        result = await self.hub.invoke("Subscribe", conversation_id, *([options] if options is not None else []))
        assert isinstance(result, dict)
        return result

    async def unsubscribe(self, conversation_id: str) -> None:
        await self.hub.invoke("Unsubscribe", conversation_id)

    async def update_subscription(self, conversation_id: str, options: dict[str, Any]) -> None:
        await self.hub.invoke("UpdateSubscription", conversation_id, options)

    async def subscribe_all(self, filter: dict[str, Any] | None = None,
                            options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        args: list[Any] = [filter or {}] + ([options] if options is not None else [])
        result = await self.hub.invoke("SubscribeAll", *args)
        assert isinstance(result, list)
        return result

    async def unsubscribe_all(self) -> None:
        await self.hub.invoke("UnsubscribeAll")

    async def get_presence(self, conversation_id: str) -> list[dict[str, Any]]:
        result = await self.hub.invoke("GetPresence", conversation_id)
        assert isinstance(result, list)
        return result

    async def whisper(self, conversation_id: str, text: str) -> None:
        await self.hub.invoke("Whisper", conversation_id, text)

    async def barge(self, conversation_id: str) -> None:
        await self.hub.invoke("Barge", conversation_id)

    async def release_barge(self, conversation_id: str) -> None:
        await self.hub.invoke("ReleaseBarge", conversation_id)

    async def send_supervisor_audio(self, conversation_id: str, pcm16_16k: bytes) -> None:
        await self.hub.invoke("SendSupervisorAudio", conversation_id, self.audio_argument(pcm16_16k))

    async def end_conversation(self, conversation_id: str, reason: str = "supervisor_ended") -> None:
        await self.hub.invoke("EndConversation", conversation_id, reason)

    def seqs(self, conversation_id: str) -> list[int]:
        """The `seq` of every history event received for a conversation, in arrival order."""
        return [int(p["seq"]) for name, p in self.log.events
                if isinstance(p, dict) and p.get("conversationId") == conversation_id and "seq" in p
                and name not in ("AudioFrame", "AudioLevel", "Presence", "Gap")]


async def _first(log: EventLog, name: str, client: HubClient, seconds: float) -> Any:
    """Wait for `name`, failing early with the server's close reason if the connection closes first."""
    waiter = asyncio.ensure_future(log.wait_for(name, seconds=seconds))
    closed = asyncio.ensure_future(client.closed.wait())
    try:
        done, _ = await asyncio.wait({waiter, closed}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done:
            return waiter.result()
        if closed in done:
            raise HubError(f"the hub closed the connection: {client.close_error or 'no reason given'}")
        raise HubError(f"no {name} within {seconds} s")
    finally:
        for task in (waiter, closed):
            task.cancel()
