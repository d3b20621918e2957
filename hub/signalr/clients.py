"""Who a hub sends to: all, caller, others, one connection, a group, a user. Node-local by design.

Every send encodes its message once per protocol (`OutgoingMessage`) and queues the same payload on every
recipient without awaiting; a slow recipient never delays the others. Cross-node fan-out of VoiceHub
events goes through the broker (hub/broker), not through SignalR groups.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TYPE_CHECKING, Any

from hub.signalr.outbound import OutgoingMessage
from protocol import InvocationMessage

if TYPE_CHECKING:
    from hub.signalr.context import HubConnectionContext
    from hub.signalr.manager import ConnectionManager


def send_to(
    targets: Iterable[HubConnectionContext], target: str, args: list[Any], *, drop_key: Hashable | None = None
) -> OutgoingMessage:
    message = OutgoingMessage(InvocationMessage(target, args))
    for connection in targets:
        connection.send_encoded(message, drop_key=drop_key)
    return message


class ClientProxy:
    def __init__(self, targets: Iterable[HubConnectionContext]) -> None:
        self._targets = targets

    def send(self, target: str, *args: Any) -> None:
        send_to(list(self._targets), target, list(args))


class SingleClientProxy(ClientProxy):
    def __init__(self, connection: HubConnectionContext | None) -> None:
        super().__init__([connection] if connection is not None else [])
        self.connection = connection

    async def invoke(self, target: str, *args: Any, seconds: float = 30.0) -> Any:
        """A client result: invoke `target` on this client and wait for its Completion (raises HubError)."""
        from hub.signalr.hub import HubError

        if self.connection is None:
            raise HubError("Connection not found.")
        return await self.connection.invoke_client(target, list(args), seconds)


class HubClients:
    def __init__(self, manager: ConnectionManager, caller: HubConnectionContext) -> None:
        self._manager = manager
        self._caller = caller

    @property
    def all(self) -> ClientProxy:
        return ClientProxy(self._manager.all_open())

    @property
    def caller(self) -> SingleClientProxy:
        return SingleClientProxy(self._caller)

    @property
    def others(self) -> ClientProxy:
        return ClientProxy(c for c in self._manager.all_open() if c is not self._caller)

    def client(self, connection_id: str) -> SingleClientProxy:
        return SingleClientProxy(self._manager.by_connection_id(connection_id))

    def group(self, name: str) -> ClientProxy:
        return ClientProxy(self._manager.group_members(name))

    def others_in_group(self, name: str) -> ClientProxy:
        return ClientProxy(c for c in self._manager.group_members(name) if c is not self._caller)

    def user(self, user_id: str) -> ClientProxy:
        return ClientProxy(self._manager.user_connections(user_id))


class GroupManager:
    def __init__(self, manager: ConnectionManager, caller: HubConnectionContext) -> None:
        self._manager = manager
        self._caller = caller

    def add(self, name: str, connection_id: str | None = None) -> None:
        connection = self._caller if connection_id is None else self._manager.by_connection_id(connection_id)
        if connection is not None:
            self._manager.add_to_group(connection, name)

    def remove(self, name: str, connection_id: str | None = None) -> None:
        connection = self._caller if connection_id is None else self._manager.by_connection_id(connection_id)
        if connection is not None:
            self._manager.remove_from_group(connection, name)
