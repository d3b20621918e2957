"""The Redis broker's one pub/sub connection per process: subscribes what local listeners need, detects outages.

One task owns the connection. It reads with a short timeout so it notices a deaf connection: the broker publishes
a heartbeat on this node's own channel every `heartbeat_interval`, and the reader expects one back within
`heartbeat_timeout`. A broken or deaf connection is dropped; the reader reconnects with capped exponential backoff
(with jitter), subscribes every wanted channel again and, once Redis confirmed them, calls on_gap("broker_outage")
on every local listener. SUBSCRIBE/UNSUBSCRIBE changes are coalesced per channel, so pending work is bounded by
the number of channels. Messages are not queued: each one is decoded once and handed to the listeners synchronously.
If this process reads too slowly, Redis' own pub/sub output buffer limit disconnects it, which is handled as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

from redis.asyncio.connection import Connection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from hub.broker import codec
from hub.broker.base import BROKER_OUTAGE, BrokerUnavailable, Keys
from hub.broker.local import LocalListeners

try:
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
except ImportError:  # pragma: no cover - another redis-py layout: the isinstance check below still ends the drain
    _NOT_ENOUGH_DATA = object()

log = logging.getLogger("hub.broker")

READ_POLL = 0.05  # seconds a read waits before the reader sends (un)subscriptions and checks the heartbeat
DRAIN_MAX = 1000  # buffered replies handled after one read before the loop checks (un)subscriptions and heartbeat


class DeafConnection(Exception):
    """No heartbeat came back in time: the connection looks open but delivers nothing."""


class PubSubReader:
    def __init__(self, url: str, keys: Keys, heartbeat_channel: str, *, connect_timeout: float,
                 heartbeat_timeout: float, backoff_min: float, backoff_max: float, subscribe_timeout: float) -> None:
        kwargs: dict[str, Any] = dict(parse_url(url))
        self._connection_class: type[Connection] = kwargs.pop("connection_class", Connection)
        kwargs.update(socket_connect_timeout=connect_timeout, socket_timeout=connect_timeout,
                      retry=Retry(NoBackoff(), 0), decode_responses=False, protocol=2)  # RESP2: pub/sub replies are plain arrays
        self._connection_kwargs = kwargs
        self.heartbeat_channel = heartbeat_channel
        self.connect_timeout = connect_timeout
        self.heartbeat_timeout = heartbeat_timeout
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.subscribe_timeout = subscribe_timeout
        self.local = LocalListeners(keys, self)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._live = False
        self._interrupted = False
        self._heartbeat_seen = 0.0
        self._changed = asyncio.Event()  # set (and replaced) whenever the live/confirmed state changes
        self._dirty: set[str] = set()
        self._sent: set[str] = set()  # channels whose last command on this connection was SUBSCRIBE
        self._pending: dict[str, int] = {}  # SUBSCRIBE replies still to come, per channel
        self._confirmed: set[str] = set()
        self.reconnects = 0

    # --- state -----------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self._live and time.monotonic() - self._heartbeat_seen <= self.heartbeat_timeout

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="voicehub-broker-pubsub")

    async def wait_live(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while not self._live:
                    await self._changed.wait()
        return self._live

    async def close(self) -> None:
        self._closing = True
        self._live = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # --- Channels (called by LocalListeners) ------------------------------------------------------------
    def want(self, channels: tuple[str, ...]) -> None:
        self._dirty.update(channels)  # the reader sends the change within READ_POLL

    def drop(self, channels: tuple[str, ...]) -> None:
        self.want(channels)

    async def wait_subscribed(self, channels: tuple[str, ...]) -> None:
        try:
            async with asyncio.timeout(self.subscribe_timeout):
                while not (self._live and all(c in self._confirmed for c in channels)):
                    await self._changed.wait()
        except TimeoutError:
            raise BrokerUnavailable(f"Redis did not confirm the subscription to {', '.join(channels)}") from None

    # --- the connection ---------------------------------------------------------------------------------
    async def _run(self) -> None:
        delay = self.backoff_min
        while not self._closing:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._live or not self._interrupted:
                    log.warning("broker pub/sub connection lost: %s", exc or type(exc).__name__)
            if self._live:
                delay = self.backoff_min
            self._live = False
            self._interrupted = True
            self._confirmed.clear()
            self._notify()
            if self._closing:
                return
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff_max)

    async def _session(self) -> None:
        connection = self._connection_class(**self._connection_kwargs)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await connection.connect()  # type: ignore[no-untyped-call]
            self._sent.clear()
            self._pending.clear()
            self._confirmed.clear()
            self._dirty.clear()
            channels = [*self.local.subscribed_channels, self.heartbeat_channel]  # heartbeat last: its reply means "all in"
            await self._send(connection, "SUBSCRIBE", channels)
            self._heartbeat_seen = time.monotonic()
            while True:
                if self._dirty:
                    await self._write_changes(connection)
                response = await connection.read_response(timeout=READ_POLL)
                if response is not None:
                    self._handle(response)
                    self._drain_buffered(connection)
                if time.monotonic() - self._heartbeat_seen > self.heartbeat_timeout:
                    raise DeafConnection(f"no heartbeat for {self.heartbeat_timeout:.1f} s")
        finally:
            with contextlib.suppress(Exception):
                await connection.disconnect(nowait=True)

    async def _send(self, connection: Connection, command: str, channels: list[str]) -> None:
        if not channels:
            return
        if command == "SUBSCRIBE":
            for channel in channels:
                self._sent.add(channel)
                self._pending[channel] = self._pending.get(channel, 0) + 1
        else:
            for channel in channels:
                self._sent.discard(channel)
                self._confirmed.discard(channel)
        async with asyncio.timeout(self.connect_timeout):
            await connection.send_command(command, *channels)

    async def _write_changes(self, connection: Connection) -> None:
        dirty, self._dirty = self._dirty, set()
        wanted = [c for c in dirty if self.local.has_listeners(c) and c not in self._sent]
        unwanted = [c for c in dirty if not self.local.has_listeners(c) and c in self._sent]
        await self._send(connection, "SUBSCRIBE", wanted)
        await self._send(connection, "UNSUBSCRIBE", unwanted)

    def _drain_buffered(self, connection: Connection) -> None:
        """Handle the replies already complete in the parser's buffer without another awaited, timed read each:
        under load Redis delivers many messages per socket read. Needs redis-py's hiredis parser (its reader's
        `gets()` returns a whole reply or False, never touching the socket); otherwise nothing is done here."""
        reader = getattr(getattr(connection, "_parser", None), "_reader", None)
        gets = getattr(reader, "gets", None)
        if gets is None:
            return
        for _ in range(DRAIN_MAX):
            reply = gets()
            if not isinstance(reply, list):
                # redis-py makes hiredis answer "no complete reply yet" with its own sentinel (not False); pub/sub
                # replies are arrays, so anything else ends the drain (and the next read returns it, if real).
                if reply is not False and reply is not _NOT_ENOUGH_DATA:
                    self._handle(reply)
                return
            self._handle(reply)

    def _handle(self, response: Any) -> None:
        if not isinstance(response, list) or len(response) < 3:
            return
        kind, raw_channel, data = response[0], response[1], response[2]
        channel = raw_channel.decode() if isinstance(raw_channel, bytes) else str(raw_channel)
        if kind == b"message":
            if channel == self.heartbeat_channel:
                self._heartbeat_seen = time.monotonic()
            elif isinstance(data, bytes):
                self.local.deliver(channel, lambda: codec.decode(data))
        elif kind == b"subscribe":
            left = self._pending.get(channel, 1) - 1
            self._pending[channel] = left
            if left <= 0 and channel in self._sent:
                self._confirmed.add(channel)
            if channel == self.heartbeat_channel and not self._live:
                self._went_live()
            self._notify()

    def _went_live(self) -> None:
        self._live = True
        self._heartbeat_seen = time.monotonic()
        if self._interrupted:
            self._interrupted = False
            self.reconnects += 1
            log.warning("broker pub/sub connection restored; listeners are told messages may be lost")
            self.local.gap(BROKER_OUTAGE)

