"""Every connection of one hub endpoint: lookup by token and id, groups, users, the 1 s heartbeat that
sends keep-alive Pings, acks, times clients out and reaps inactive connections."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from hub.signalr.context import HubConnectionContext, State
from hub.signalr.hub import Hub
from hub.signalr.ids import new_id
from hub.signalr.options import HubOptions

log = logging.getLogger("hub.signalr")


class ConnectionManager:
    def __init__(self, hub_factory: Callable[[], Hub], options: HubOptions) -> None:
        self.hub_factory = hub_factory
        self.options = options
        self._by_token: dict[str, HubConnectionContext] = {}
        self._by_id: dict[str, HubConnectionContext] = {}
        self._open: dict[str, HubConnectionContext] = {}
        self._groups: dict[str, set[HubConnectionContext]] = {}
        self._users: dict[str, set[HubConnectionContext]] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self.metrics_dropped_frames = 0
        self.metrics_slow_consumers = 0
        self.metrics_connections_total = 0
        self.metrics_messages_in = 0
        self.metrics_frames_out = 0
        self.draining = False

    # --- lifecycle --------------------------------------------------------------------------------
    def create(self, *, stateful: bool, user: Any, version: int = 1) -> HubConnectionContext:
        self._ensure_heartbeat()
        connection_id = new_id()
        token = new_id() if version > 0 else connection_id
        connection = HubConnectionContext(self, connection_id, token, stateful_negotiated=stateful, user=user)
        self._by_token[token] = connection
        self._by_id[connection_id] = connection
        self.metrics_connections_total += 1
        return connection

    def full(self) -> bool:
        return len(self._by_token) >= self.options.max_connections

    def by_token(self, token: str) -> HubConnectionContext | None:
        return self._by_token.get(token)

    def by_connection_id(self, connection_id: str) -> HubConnectionContext | None:
        return self._by_id.get(connection_id)

    def opened(self, connection: HubConnectionContext) -> None:
        self._open[connection.connection_id] = connection
        if connection.user_id is not None:
            self._users.setdefault(connection.user_id, set()).add(connection)

    def dispose(self, connection: HubConnectionContext, error: BaseException | None) -> None:
        """End a connection for good: forget it, leave its groups, stop its work, run on_disconnected."""
        if connection.state is State.CLOSED:
            return
        was_open = connection.state is State.OPEN
        connection.state = State.CLOSED
        connection.closing = True
        self._by_token.pop(connection.token, None)
        self._by_id.pop(connection.connection_id, None)
        self._open.pop(connection.connection_id, None)
        for name in list(connection.groups):
            self.remove_from_group(connection, name)
        if connection.user_id is not None:
            users = self._users.get(connection.user_id)
            if users is not None:
                users.discard(connection)
                if not users:
                    del self._users[connection.user_id]
        connection.fail_client_results()
        connection.queue.clear()
        connection.queue.wake()
        connection.transport_gone.set()
        dispatcher = connection.dispatcher
        if dispatcher is not None:
            dispatcher.stop()
            if was_open:
                task = asyncio.get_running_loop().create_task(self._disconnected(dispatcher.hub, error))
                task.add_done_callback(lambda _t: connection.closed.set())
                return
        connection.closed.set()

    async def _disconnected(self, hub: Hub, error: BaseException | None) -> None:
        try:
            await hub.on_disconnected(error)
        except Exception:
            log.exception("on_disconnected of %s failed", hub.context.connection_id)

    # --- groups and users -------------------------------------------------------------------------
    def add_to_group(self, connection: HubConnectionContext, name: str) -> None:
        if connection.state is State.CLOSED:
            return
        self._groups.setdefault(name, set()).add(connection)
        connection.groups.add(name)

    def remove_from_group(self, connection: HubConnectionContext, name: str) -> None:
        members = self._groups.get(name)
        if members is not None:
            members.discard(connection)
            if not members:
                del self._groups[name]
        connection.groups.discard(name)

    def group_members(self, name: str) -> Iterable[HubConnectionContext]:
        return list(self._groups.get(name, ()))

    def user_connections(self, user_id: str) -> Iterable[HubConnectionContext]:
        return list(self._users.get(user_id, ()))

    def all_connections(self) -> Iterable[HubConnectionContext]:
        """Every connection not yet disposed, including negotiated ones that never connected."""
        return list(self._by_token.values())

    def all_open(self) -> Iterable[HubConnectionContext]:
        return list(self._open.values())

    def counts(self) -> dict[str, int]:
        by_transport: dict[str, int] = {}
        for connection in self._open.values():
            name = connection.transport.value if connection.transport is not None else "none"
            by_transport[name] = by_transport.get(name, 0) + 1
        return by_transport

    # --- heartbeat --------------------------------------------------------------------------------
    def _ensure_heartbeat(self) -> None:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.options.heartbeat_interval)
            now = time.monotonic()
            timeout = self.options.disconnect_timeout
            for connection in list(self._by_token.values()):
                try:
                    inactive = connection.inactive_since
                    if inactive is not None and now - inactive > timeout:
                        log.info("connection %s: inactive for %.0f s, disposed", connection.connection_id, timeout)
                        self.dispose(connection, None)
                        continue
                    connection.tick(now)
                except Exception:
                    log.exception("heartbeat of connection %s failed", connection.connection_id)

    async def drain(self, grace: float) -> None:
        """Shutdown: Close{allowReconnect: true} to every connection, wait up to `grace` for them to go."""
        self.draining = True
        for connection in list(self._by_token.values()):
            connection.close(None, allow_reconnect=True)
        waits = [c.closed.wait() for c in self._by_token.values()]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), grace)
        for connection in list(self._by_token.values()):
            self.dispose(connection, None)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
