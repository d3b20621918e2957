"""One SignalR connection: identity, protocol state, outbound queue, timers.

Transports move bytes in (`receive`) and out (`next_write`); everything else lives here and in the
dispatcher. States: negotiated (no transport yet) -> connected (transport attached, handshake pending)
-> open (handshake done, hub attached) -> closed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Hashable, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any

from hub.signalr.light import LightEvent
from hub.signalr.outbound import OutboundQueue, OutgoingMessage, Payload, join_payloads
from protocol import CloseMessage, HubProtocol, InvocationMessage, SequenceMessage, TransferFormat
from protocol.messages import PING, AckMessage, HubMessage
from protocol.negotiate import Transport
from protocol.stateful import InboundSequence, ReplayBuffer

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from hub.signalr.dispatcher import Dispatcher
    from hub.signalr.manager import ConnectionManager

log = logging.getLogger("hub.signalr")


class State(Enum):
    NEGOTIATED = "negotiated"
    CONNECTED = "connected"
    OPEN = "open"
    CLOSED = "closed"


class ConnectionClosed(Exception):
    """The connection ended while waiting for it."""


class HubConnectionContext:
    # Slots, not a __dict__: ~1.2 KB less per connection (every attribute is set in __init__).
    __slots__ = (
        "_client_results",
        "_invocation_ids",
        "_resume",
        "close_error",
        "closed",
        "closing",
        "connection_id",
        "created_at",
        "dispatcher",
        "drop_listeners",
        "groups",
        "inactive_since",
        "inbound",
        "items",
        "last_received",
        "last_sent",
        "manager",
        "options",
        "ping_received",
        "protocol",
        "query",
        "queue",
        "replay",
        "request",
        "state",
        "stateful_negotiated",
        "token",
        "transport",
        "transport_gone",
        "user",
        "user_id",
        "__weakref__",
    )

    def __init__(
        self,
        manager: ConnectionManager,
        connection_id: str,
        token: str,
        *,
        stateful_negotiated: bool = False,
        user: Any = None,
    ) -> None:
        self.manager = manager
        self.connection_id = connection_id
        self.token = token
        self.stateful_negotiated = stateful_negotiated
        self.user = user
        self.user_id: str | None = getattr(user, "subject", None)
        self.items: dict[str, Any] = {}
        self.transport: Transport | None = None
        self.protocol: HubProtocol | None = None
        self.request: HTTPConnection | None = None
        self.query: Mapping[str, str] = {}
        self.state = State.NEGOTIATED
        self.options = manager.options
        self.queue = OutboundQueue(
            max_bytes=self.options.max_queued_bytes,
            max_droppable=self.options.max_droppable_frames,
            on_drop=self._on_drop,
        )
        self.replay: ReplayBuffer | None = None
        self.inbound: InboundSequence | None = None
        self.dispatcher: Dispatcher | None = None
        self.groups: set[str] = set()
        now = time.monotonic()
        self.created_at = now
        self.last_received = now
        self.last_sent = now
        self.ping_received = False
        self.inactive_since: float | None = now  # no transport attached
        self.closing = False
        self.close_error: BaseException | None = None
        self.closed = LightEvent()
        self.transport_gone = LightEvent()  # set when the manager ends the connection: transports stop
        self._resume: list[Payload] | None = None
        self._client_results: dict[str, asyncio.Future[Any]] = {}
        self._invocation_ids = itertools.count(1)
        self.drop_listeners: list[Any] = []

    # --- identity helpers -------------------------------------------------------------------------
    def header(self, name: str) -> str | None:
        return self.request.headers.get(name) if self.request is not None else None

    def cookie(self, name: str) -> str | None:
        return self.request.cookies.get(name) if self.request is not None else None

    @property
    def is_open(self) -> bool:
        return self.state is State.OPEN and not self.closing

    # --- outbound ---------------------------------------------------------------------------------
    def send_message(self, message: HubMessage, *, drop_key: Hashable | None = None) -> None:
        self.send_encoded(OutgoingMessage(message), drop_key=drop_key)

    def send_encoded(self, message: OutgoingMessage, *, drop_key: Hashable | None = None) -> None:
        """Queue a pre-encoded message; never waits. A full queue closes the connection (slow consumer)."""
        protocol = self.protocol
        if protocol is None or self.state is State.CLOSED or self.closing:
            return
        if not self.queue.put(message.payload(protocol), trackable=message.trackable, drop_key=drop_key):
            self.manager.metrics_slow_consumers += 1
            log.warning("connection %s: send queue over %d bytes, closing it (slow consumer)", self.connection_id,
                        self.queue.max_bytes)
            self.queue.clear()
            self.close("Connection closed with an error. The client did not read fast enough (slow consumer).",
                       allow_reconnect=True)

    def send_raw(self, payload: Payload) -> None:
        """Handshake response and other frames outside the hub protocol (never dropped, never numbered)."""
        self.queue.put(payload, trackable=False, force=True)

    def _on_drop(self, key: Hashable, count: int) -> None:
        self.manager.metrics_dropped_frames += count
        for listener in self.drop_listeners:
            listener(key, count)

    async def next_write(self) -> Payload | None:
        """What the transport writes next: one or more whole frames; None once the connection is over."""
        while True:
            payload = self.take_write()
            if payload is not None:
                return payload
            if self.writes_finished:
                return None
            await self.queue.wait_signal()

    def take_write(self) -> Payload | None:
        """The next transport write if one is ready now (never waits): `next_write` without the waiting, for
        transports that write synchronously (hub.signalr.transports.websocket.DirectWriter)."""
        if self._resume is not None:
            payloads, self._resume = self._resume, None
            return join_payloads(payloads)
        replay = self.replay
        entries = self.queue.take(trackable_allowed=replay is None or not replay.full)
        if not entries:
            return None
        if replay is not None:
            for entry in entries:
                if entry.trackable:
                    replay.add(entry.payload)
        self.last_sent = time.monotonic()
        self.manager.metrics_frames_out += len(entries)
        return join_payloads([entry.payload for entry in entries])

    @property
    def writes_finished(self) -> bool:
        """Nothing more will be written: closing with an empty queue, or closed."""
        return (self.closing and not len(self.queue)) or self.state is State.CLOSED

    def close(self, error: str | None = None, *, allow_reconnect: bool = False) -> None:
        """Send Close (if the handshake happened), let the transport flush it, then end the connection."""
        if self.closing or self.state is State.CLOSED:
            return
        if self.protocol is not None and self.state is State.OPEN:
            self.queue.put(self.protocol.encode(CloseMessage(error, allow_reconnect)).decode("utf-8")
                           if self.protocol.transfer_format is TransferFormat.TEXT
                           else self.protocol.encode(CloseMessage(error, allow_reconnect)), trackable=False, force=True)
        self.closing = True
        self.queue.wake()
        if self.transport is None:
            self.manager.dispose(self, None)
        # Otherwise the transport flushes the Close and ends; long polling: the next poll takes the Close,
        # the one after gets 204 (or the reaper ends it if no poll comes).

    # --- client results ---------------------------------------------------------------------------
    async def invoke_client(self, target: str, args: list[Any], seconds: float) -> Any:
        from hub.signalr.hub import HubError

        if not self.is_open:
            raise HubError("Connection is not open.")
        invocation_id = f"s{next(self._invocation_ids)}"
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._client_results[invocation_id] = future
        self.send_message(InvocationMessage(target, args, invocation_id))
        try:
            return await asyncio.wait_for(future, seconds)
        except TimeoutError:
            raise HubError(f"Client did not answer '{target}' within {seconds:g} s.") from None
        finally:
            self._client_results.pop(invocation_id, None)

    def complete_client_result(self, invocation_id: str, error: str | None, result: Any) -> bool:
        from hub.signalr.hub import HubError

        future = self._client_results.get(invocation_id)
        if future is None:
            return False
        if not future.done():
            if error is not None:
                future.set_exception(HubError(error))
            else:
                future.set_result(result)
        return True

    def fail_client_results(self) -> None:
        from hub.signalr.hub import HubError

        for future in self._client_results.values():
            if not future.done():
                future.set_exception(HubError("Connection closed before the client answered."))
        self._client_results.clear()

    # --- stateful reconnect -----------------------------------------------------------------------
    def enable_stateful(self) -> None:
        self.queue.disable_fast()  # every frame must go through the replay buffer
        self.replay = ReplayBuffer(self.options.stateful_buffer_bytes)
        self.inbound = InboundSequence()

    def ack(self, sequence_id: int) -> None:
        if self.replay is not None:
            self.replay.ack(sequence_id)
            self.queue.wake()

    def resume(self) -> None:
        """A new WebSocket for a stateful connection: Sequence, then every unacked frame, then the queue."""
        assert self.replay is not None and self.protocol is not None
        sequence = OutgoingMessage(SequenceMessage(self.replay.first_unacked())).payload(self.protocol)
        self._resume = [sequence, *self.replay.unacked()]
        self.queue.wake()

    # --- timers (called once a second by the manager's heartbeat) ----------------------------------
    def tick(self, now: float) -> None:
        options = self.options
        if self.state is State.CONNECTED and now - self.created_at > options.handshake_timeout:
            log.info("connection %s: no handshake within %.0f s", self.connection_id, options.handshake_timeout)
            self.manager.dispose(self, None)
            return
        if self.state is not State.OPEN or self.closing:
            return
        if self.transport is not Transport.LONG_POLLING and self.inactive_since is None:
            if options.keep_alive and now - self.last_sent >= options.keep_alive:
                self.send_message(PING)
                self.last_sent = now
            if self.ping_received and options.client_timeout and now - self.last_received > options.client_timeout:
                log.info("connection %s: nothing from the client for %.0f s", self.connection_id, options.client_timeout)
                self.close("Connection closed with an error. Client timeout elapsed.", allow_reconnect=True)
                return
        if self.inbound is not None and self.inactive_since is None:
            due = self.inbound.ack_due()
            if due is not None:
                self.send_message(AckMessage(due))
