"""The conformance app's TestHub (signalr-protocol.md section 3), as far as the runtime supports it today."""

from __future__ import annotations

from collections.abc import AsyncIterator

from hub.signalr.hub import Hub, hub_method


class TestHub(Hub):
    @hub_method("Echo")
    def echo(self, message: str) -> str:
        return message

    @hub_method("GetCallerConnectionId")
    def get_caller_connection_id(self) -> str:
        return self.connection_id

    @hub_method("GetActiveTransportName")
    def get_active_transport_name(self) -> str:
        return "WebSockets"

    @hub_method("ThrowException")
    def throw_exception(self, message: str) -> None:
        raise InvalidOperationException(message)


    @hub_method("Stream")
    async def stream(self) -> AsyncIterator[str]:
        for item in ("a", "b", "c"):
            yield item

    @hub_method("EmptyStream")
    async def empty_stream(self) -> AsyncIterator[int]:
        empty: tuple[int, ...] = ()
        for item in empty:
            yield item


class InvalidOperationException(Exception):
    pass
