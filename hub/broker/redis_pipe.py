"""RedisPipe: one pipelined Redis connection for the broker's hot writes (audio frames and events).

Why: redis-py's asyncio client spends about 100 us of CPU per command (pool checkout, a timeout context, command
packing in Python); an agent process that publishes 50 frames/s for each of dozens of conversations spent half a
core there (docs/performance.md). The pipe keeps one connection, packs commands with hiredis, writes every command
issued in the same event-loop pass in one write, and matches replies to commands in order.

Limits and failure, each said once here:
- At most `max_pending` commands wait for their reply (and none while the socket's write buffer is full); a caller
  beyond that waits for room up to `command_timeout`, then gets BrokerUnavailable. Nothing queues without bound.
- One watchdog timer per connection instead of a timeout per command: once the oldest command has waited
  `command_timeout` for its reply, the connection is dropped and every waiting command fails with BrokerUnavailable
  (Redis stalled or the link broke; like redis-py, a failed write may or may not have been applied).
- After a failure the next command reconnects, bounded by `connect_timeout`; concurrent callers share one attempt.
- Scripts go as EVALSHA and are sent again as EVAL when Redis answers NOSCRIPT (restarted, or SCRIPT FLUSH).
- Error replies raise BrokerUnavailable with Redis's message, like every other broker command.
URLs: redis:// and unix:// with user, password and db; anything else (rediss://) keeps the redis-py path
(`RedisPipe.supports`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

from hub.broker.base import BrokerUnavailable

DEFAULT_MAX_PENDING = 4096
SCHEMES = ("redis", "unix")


@dataclass(frozen=True, slots=True)
class PipeScript:
    source: bytes
    sha: bytes

    @classmethod
    def of(cls, source: str) -> PipeScript:
        data = source.encode()
        return cls(data, hashlib.sha1(data).hexdigest().encode())  # noqa: S324 - the name Redis gives a script


Arg = bytes | str | int | float


def pack(args: Sequence[Arg]) -> bytes:
    """One command in Redis's wire form (hiredis, in C)."""
    packed: bytes = hiredis.pack_command(cast(Any, tuple(args)))
    return packed


def parse_url(url: str) -> dict[str, Any]:
    """host/port or path, username, password, db of a redis:// or unix:// URL (db from the path or ?db=)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    params: dict[str, Any] = {"username": unquote(parts.username) if parts.username else None,
                              "password": unquote(parts.password) if parts.password else None}
    db = query.get("db", [""])[0]
    if parts.scheme == "unix":
        params["path"] = unquote(parts.path)
    else:
        params["host"] = parts.hostname or "localhost"
        params["port"] = parts.port or 6379
        db = parts.path.strip("/") or db
    params["db"] = int(db or 0)
    return params


class ReplyError(Exception):
    """An error reply from Redis (message as Redis wrote it)."""


class _Link(asyncio.Protocol):
    """One connection: commands written in order, replies matched in order."""

    def __init__(self, timeout: float, max_pending: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.timeout = timeout
        self.max_pending = max_pending
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()  # (reply, deadline)
        self.out: list[bytes] = []
        self.error: BrokerUnavailable | None = None
        self.write_paused = False
        self.room: list[asyncio.Future[None]] = []
        self.watchdog: asyncio.TimerHandle | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        waiting = self.waiting
        reader.feed(data)
        try:
            while (reply := reader.gets()) is not False:
                if not waiting:
                    self.fail("Redis sent a reply nobody asked for")
                    return
                future = waiting.popleft()[0]
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(reply, hiredis.ReplyError):
                    future.set_exception(ReplyError(str(reply)))
                else:
                    future.set_result(reply)
        except hiredis.ProtocolError as exc:
            self.fail(f"unreadable reply from Redis: {exc}")
            return
        if self.room and len(waiting) < self.max_pending:
            self._wake_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(f"connection lost: {exc}" if exc else "connection closed by Redis")

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_room()

    # --- commands -----------------------------------------------------------------------------------
    @property
    def full(self) -> bool:
        return self.write_paused or len(self.waiting) >= self.max_pending

    async def wait_room(self) -> None:
        deadline = self.loop.time() + self.timeout
        while self.full and self.error is None:
            room = self.loop.create_future()
            self.room.append(room)
            try:
                async with asyncio.timeout_at(deadline):
                    await room
            except TimeoutError:
                raise BrokerUnavailable(f"Redis is {len(self.waiting)} commands behind for {self.timeout:g} s") from None
        if self.error is not None:
            raise BrokerUnavailable(str(self.error))

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        """Queue one packed command for this loop pass's write; the future gets its reply."""
        future: asyncio.Future[Any] = self.loop.create_future()
        if not self.out:
            self.loop.call_soon(self._flush)
        self.out.append(packed)
        self.waiting.append((future, self.loop.time() + self.timeout))
        if self.watchdog is None:
            self.watchdog = self.loop.call_later(self.timeout, self._check)
        return future

    def _flush(self) -> None:
        out, self.out = self.out, []
        if self.transport is not None and self.error is None and out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _check(self) -> None:
        self.watchdog = None
        if not self.waiting or self.error is not None:
            return
        deadline = self.waiting[0][1]
        if self.loop.time() >= deadline:
            self.fail(f"no reply within {self.timeout:g} s")
        else:
            self.watchdog = self.loop.call_at(deadline, self._check)

    def fail(self, reason: str) -> None:
        """Drop the connection: every waiting command fails with BrokerUnavailable."""
        if self.error is None:
            self.error = BrokerUnavailable(f"Redis {reason}")
        if self.transport is not None:
            self.transport.abort()
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        waiting, self.waiting = self.waiting, deque()
        for future, _deadline in waiting:
            if not future.done():
                future.set_exception(BrokerUnavailable(str(self.error)))  # one instance per waiter: no shared traceback
        self.out = []
        self._wake_room()

    def _wake_room(self) -> None:
        room, self.room = self.room, []
        for future in room:
            if not future.done():
                future.set_result(None)


class RedisPipe:
    """`await pipe.execute(what, *args)` / `await pipe.run_script(what, script, keys, args)`; `await pipe.close()`."""

    def __init__(self, url: str, *, command_timeout: float = 2.0, connect_timeout: float = 1.0,
                 max_pending: int = DEFAULT_MAX_PENDING) -> None:
        if not self.supports(url):
            raise ValueError(f"RedisPipe supports {', '.join(SCHEMES)} URLs, not {url.split(':', 1)[0]}")
        self.params: dict[str, Any] = parse_url(url)
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self.max_pending = max_pending
        self._link: _Link | None = None
        self._connecting: asyncio.Future[_Link] | None = None
        self._closed = False

    @staticmethod
    def supports(url: str) -> bool:
        return urlsplit(url).scheme in SCHEMES

    async def execute(self, what: str, *args: Arg) -> Any:
        """One command's reply; BrokerUnavailable if Redis refuses, stalls or answers with an error."""
        try:
            return await self._send(pack(args))
        except (ReplyError, BrokerUnavailable) as exc:
            raise BrokerUnavailable(f"Redis {what} failed: {exc}") from None

    async def run_script(self, what: str, script: PipeScript, keys: Sequence[str | bytes],
                         args: Sequence[Arg]) -> Any:
        try:
            try:
                return await self._send(pack((b"EVALSHA", script.sha, len(keys), *keys, *args)))
            except ReplyError as exc:
                if not str(exc).startswith("NOSCRIPT"):
                    raise
            return await self._send(pack((b"EVAL", script.source, len(keys), *keys, *args)))
        except (ReplyError, BrokerUnavailable) as exc:
            raise BrokerUnavailable(f"Redis {what} failed: {exc}") from None

    async def _send(self, packed: bytes) -> Any:
        link = self._link
        if link is None or link.error is not None:
            link = await self._connect()
        if link.full:
            await link.wait_room()
        return await link.send(packed)

    async def _connect(self) -> _Link:
        if self._closed:
            raise BrokerUnavailable("the broker is closed")
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None
                if not connecting.cancelled():
                    connecting.exception()  # raised to the callers above; not "never retrieved"

    async def _open(self) -> _Link:
        loop = asyncio.get_running_loop()
        params = self.params

        def factory() -> _Link:
            return _Link(self.command_timeout, self.max_pending)

        try:
            async with asyncio.timeout(self.connect_timeout):
                if "path" in params:
                    _, link = await loop.create_unix_connection(factory, params["path"])
                else:
                    _, link = await loop.create_connection(factory, params["host"], params["port"])
                try:
                    hello: list[asyncio.Future[Any]] = []
                    if params.get("password"):
                        user = [params["username"]] if params.get("username") else []
                        hello.append(link.send(pack((b"AUTH", *user, params["password"]))))
                    if params["db"]:
                        hello.append(link.send(pack((b"SELECT", params["db"]))))
                    for reply in hello:
                        await reply
                except BaseException:
                    link.fail("handshake failed")
                    raise
        except ReplyError as exc:
            raise BrokerUnavailable(f"Redis refused the connection: {exc}") from None
        except (OSError, TimeoutError) as exc:
            raise BrokerUnavailable(f"cannot connect to Redis: {exc or type(exc).__name__}") from None
        if self._closed:
            link.fail("closed")
            raise BrokerUnavailable("the broker is closed")
        self._link = link
        return link

    async def close(self) -> None:
        self._closed = True
        link, self._link = self._link, None
        if link is not None:
            link.fail("connection closed by the broker")
        if self._connecting is not None:
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
            self._connecting = None
