"""RedisBroker: the contract's keys and channels on Redis (redis.asyncio with hiredis), shared by hub nodes and pipelines.

Every command is bounded by `command_timeout` and raises BrokerUnavailable when Redis refuses, times out or errors;
the command pool is bounded too (`max_connections`; waiting for a free connection counts against the timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable
from typing import Any, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from hub.broker import codec, redis_scripts
from hub.broker.base import (
    AUDIO_WINDOW_MS,
    AUDIOLOG_MAXLEN,
    DEFAULT_PREFIX,
    HISTORY_TTL_S,
    LOG_MAXLEN,
    BrokerUnavailable,
    ConversationListener,
    Event,
    GapListener,
    History,
    Keys,
    Listener,
    audio_frames_since,
)
from hub.broker.local import LocalSubscription
from hub.broker.redis_pipe import PipeScript, RedisPipe
from hub.broker.redis_pubsub import PubSubReader
from hub.broker.redis_sessions import RedisSessionRegistry

log = logging.getLogger("hub.broker")
T = TypeVar("T")

AUDIO_SCAN_BATCH = 500  # recent_audio reads the audiolog newest first in batches of this many entries


def default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class RedisBroker:
    def __init__(self, url: str, *, prefix: str = DEFAULT_PREFIX, node_id: str | None = None,
                 log_maxlen: int = LOG_MAXLEN, audio_window_ms: int = AUDIO_WINDOW_MS,
                 audiolog_maxlen: int = AUDIOLOG_MAXLEN, command_timeout: float = 2.0, connect_timeout: float = 1.0,
                 heartbeat_interval: float = 1.0, heartbeat_timeout: float = 3.0, backoff_min: float = 0.1,
                 backoff_max: float = 2.0, subscribe_timeout: float = 5.0, max_connections: int = 32,
                 pipelined: bool = True) -> None:
        """`pipelined=False` sends frames and events through the command pool too (what scripts/bench_publisher.py
        compares against); by default they go over one pipelined connection where the URL allows (redis_pipe.py)."""
        self.url = url
        self.prefix = prefix
        self.keys = Keys(prefix)
        self.node_id = node_id or default_node_id()
        self.log_maxlen = log_maxlen
        self.audio_window_ms = audio_window_ms
        self.audiolog_maxlen = audiolog_maxlen
        self.command_timeout = command_timeout
        self.heartbeat_interval = heartbeat_interval
        self._pool = BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=command_timeout, socket_timeout=command_timeout,
            socket_connect_timeout=connect_timeout, retry=Retry(NoBackoff(), 1), decode_responses=False)
        self.redis = Redis(connection_pool=self._pool)
        self._publish_event = self.redis.register_script(redis_scripts.PUBLISH_EVENT)
        self._publish_audio = self.redis.register_script(redis_scripts.PUBLISH_AUDIO)
        # The hot writes (frames, events) go over one pipelined connection when the URL allows it (redis_pipe.py).
        self._pipe = RedisPipe(url, command_timeout=command_timeout, connect_timeout=connect_timeout) \
            if pipelined and RedisPipe.supports(url) else None
        self._pipe_publish_event = PipeScript.of(redis_scripts.PUBLISH_EVENT)
        self._pipe_publish_audio = PipeScript.of(redis_scripts.PUBLISH_AUDIO)
        self._history = self.redis.register_script(redis_scripts.HISTORY)
        self._expire = self.redis.register_script(redis_scripts.EXPIRE)
        self._renew = self.redis.register_script(redis_scripts.RENEW_LEASE)
        self._release = self.redis.register_script(redis_scripts.RELEASE_LEASE)
        self.reader = PubSubReader(url, self.keys, self.keys.heartbeat(self.node_id), connect_timeout=connect_timeout,
                                   heartbeat_timeout=heartbeat_timeout, backoff_min=backoff_min, backoff_max=backoff_max,
                                   subscribe_timeout=subscribe_timeout)
        self.local = self.reader.local
        self._heartbeat: asyncio.Task[None] | None = None
        self._closed = False
        self.sessions = RedisSessionRegistry(self)  # caller sessions across nodes (hub/broker/redis_sessions.py)

    # --- health ----------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """False while Redis is unreachable or the pub/sub connection is deaf (no heartbeat back in time)."""
        return not self._closed and self.reader.ready

    async def start(self, wait: float = 5.0) -> None:
        """Start the pub/sub reader and heartbeat; wait up to `wait` s for Redis (then carry on, not ready)."""
        self.reader.start()
        if self._heartbeat is None:
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat(), name="voicehub-broker-heartbeat")
        if not await self.reader.wait_live(wait):
            log.warning("Redis at %s is not reachable yet; the broker keeps trying", self._pool.connection_kwargs.get("host"))

    async def close(self) -> None:
        self._closed = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        await self.reader.close()
        if self._pipe is not None:
            await self._pipe.close()
        await self.redis.aclose()
        await self._pool.aclose()

    async def _beat(self) -> None:
        channel = self.keys.heartbeat(self.node_id)
        while True:
            with contextlib.suppress(BrokerUnavailable):
                await self._call("heartbeat", self.redis.publish(channel, b"1"))
            await asyncio.sleep(self.heartbeat_interval)

    async def _call(self, what: str, command: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.command_timeout):
                return await command
        except (RedisError, OSError, TimeoutError) as exc:
            raise BrokerUnavailable(f"Redis {what} failed: {exc or type(exc).__name__}") from exc

    # --- publishing --------------------------------------------------------------------------------------
    async def publish_event(self, conversation_id: str, event: Event, *, lifecycle: bool = False) -> int:
        k = self.keys
        keys = [k.seq(conversation_id), k.log(conversation_id), k.events(conversation_id), k.lifecycle]
        args: list[Any] = [codec.encode_without_seq(event), self.log_maxlen, "1" if lifecycle else "0"]
        if self._pipe is not None:
            seq = await self._pipe.run_script("publish_event", self._pipe_publish_event, keys, args)
        else:
            seq = await self._call("publish_event", self._publish_event(keys=keys, args=args))
        return int(seq)

    async def publish_audio(self, conversation_id: str, frame: dict[str, Any]) -> None:
        keys = [self.keys.audio(conversation_id), self.keys.audiolog(conversation_id)]
        args: list[Any] = [codec.encode(frame), self.audio_window_ms, self.audiolog_maxlen]
        if self._pipe is not None:
            await self._pipe.run_script("publish_audio", self._pipe_publish_audio, keys, args)
        else:
            await self._call("publish_audio", self._publish_audio(keys=keys, args=args))

    async def publish_control(self, conversation_id: str, message: dict[str, Any]) -> None:
        await self._call("publish_control", self.redis.publish(self.keys.control(conversation_id), codec.encode(message)))

    # --- history -----------------------------------------------------------------------------------------
    async def history(self, conversation_id: str, after_seq: int, limit: int = LOG_MAXLEN) -> History:
        keys = [self.keys.seq(conversation_id), self.keys.log(conversation_id)]
        last, entries = await self._call("history", self._history(keys=keys, args=[after_seq, max(1, limit)]))
        events = [codec.decode(_field(fields)) for _id, fields in entries]
        last_seq = int(last)
        first = events[0]["seq"] if events else last_seq + 1
        return History(events, last_seq, after_seq < last_seq and first > after_seq + 1)

    async def last_seq(self, conversation_id: str) -> int:
        value = await self._call("last_seq", self.redis.get(self.keys.seq(conversation_id)))
        return int(value) if value is not None else 0

    async def recent_audio(self, conversation_id: str, since_ms: int) -> list[dict[str, Any]]:
        """Frames of the audiolog with timestampMs >= since_ms (conversation time), oldest first."""
        key = self.keys.audiolog(conversation_id)
        newest_first: list[dict[str, Any]] = []
        upper: bytes | str = "+"
        while True:
            entries: Any = await self._call("recent_audio", self.redis.xrevrange(key, upper, "-", count=AUDIO_SCAN_BATCH))
            if not entries:
                break
            batch = [codec.decode(fields[b"frame"]) for _id, fields in entries]
            newest_first.extend(batch)
            if len(entries) < AUDIO_SCAN_BATCH or all(int(f.get("timestampMs") or 0) < since_ms for f in batch):
                break
            upper = b"(" + bytes(entries[-1][0])
        return audio_frames_since(newest_first, since_ms)

    async def expire_history(self, conversation_id: str, seconds: int = HISTORY_TTL_S) -> None:
        await self._call("expire_history", self._expire(keys=list(self.keys.history_keys(conversation_id)), args=[seconds]))

    async def delete_history(self, conversation_id: str) -> None:
        await self._call("delete_history", self.redis.delete(*self.keys.history_keys(conversation_id)))

    # --- subscriptions -----------------------------------------------------------------------------------
    def subscribe_conversation(self, conversation_id: str, listener: ConversationListener) -> LocalSubscription:
        return self.local.add_conversation(conversation_id, listener)

    def subscribe_lifecycle(self, listener: Listener, *, on_gap: GapListener | None = None) -> LocalSubscription:
        return self.local.add_lifecycle(listener, on_gap)

    def subscribe_control(self, conversation_id: str, listener: Listener, *,
                          on_gap: GapListener | None = None) -> LocalSubscription:
        return self.local.add_control(conversation_id, listener, on_gap)

    # --- leases ------------------------------------------------------------------------------------------
    async def acquire_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        done = await self._call("acquire_lease", self.redis.set(self.keys.lease(name), owner, nx=True, px=_ms(ttl_s)))
        return bool(done)

    async def renew_lease(self, name: str, owner: str, ttl_s: float) -> bool:
        done = await self._call("renew_lease", self._renew(keys=[self.keys.lease(name)], args=[owner, _ms(ttl_s)]))
        return bool(done)

    async def release_lease(self, name: str, owner: str) -> None:
        await self._call("release_lease", self._release(keys=[self.keys.lease(name)], args=[owner]))


def _field(fields: list[bytes]) -> bytes:
    """The payload of a stream entry [name, payload]."""
    return fields[1]


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
