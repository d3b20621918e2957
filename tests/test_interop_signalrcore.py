"""The signalrcore Python client (threaded, sync API) against `python -m hub serve --conformance`: connect, invoke,
server->client calls, errors, server-to-client streams, uploads, stop; over WebSockets with JSON and MessagePack,
and over long polling (whose first POST, the handshake, comes before the first poll)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from signalrcore.hub.base_hub_connection import BaseHubConnection
from signalrcore.hub_connection_builder import HubConnectionBuilder
from signalrcore.subject import Subject
from signalrcore.types import HttpTransportType, HubProtocolEncoding

from tests.support.serve import running_hub
from tests.support.timing import scaled

WAIT = 10.0


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    with running_hub("--conformance", "--drain-grace", "1") as url:
        yield url


class Call:
    """One invocation's outcome, filled from signalrcore's callback threads."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Any = None
        self.error: str | None = None

    def wait(self) -> Call:
        assert self.done.wait(scaled(WAIT)), "no completion from the server"
        return self


class Session:
    def __init__(self, connection: BaseHubConnection) -> None:
        self.connection = connection
        self.calls: dict[str, Call] = {}
        self.opened = threading.Event()
        self.closed = threading.Event()
        connection.on_open(self.opened.set)
        connection.on_close(self.closed.set)
        connection.on_error(self._on_error)

    def _on_error(self, message: Any) -> None:
        call = self.calls.get(getattr(message, "invocation_id", ""))
        if call is not None:
            call.error = message.error
            call.done.set()

    def invoke(self, target: str, arguments: list[Any] | Subject) -> Call:
        call = Call()
        # registered before sending: the answer arrives on signalrcore's reader thread, possibly before invoke returns
        invocation_id = str(uuid.uuid4())
        self.calls[invocation_id] = call

        def completed(message: Any) -> None:
            call.result = message.result
            call.done.set()

        if isinstance(arguments, Subject):
            # signalrcore gives no completion callback for uploads; errors still arrive through on_error
            self.connection.invoke(target, arguments, invocation_id=invocation_id)
            return call
        self.connection.invoke(target, arguments, on_invocation=completed, invocation_id=invocation_id)
        return call

    def stream(self, target: str, arguments: list[Any]) -> list[Any]:
        items: list[Any] = []
        done = threading.Event()
        self.connection.stream(target, arguments).subscribe(
            {"next": items.append, "complete": lambda _m: done.set(), "error": lambda _m: done.set()}
        )
        assert done.wait(scaled(WAIT)), f"stream {target} did not complete"
        return items

    def stop(self) -> None:
        # signalrcore's stop() closes its socket, then joins its receive thread, which stays in recv() until the
        # server sends something (a keep-alive, up to 15 s later). A running stream wakes it within 50 ms.
        transport = self.connection.transport
        if transport is not None and transport.is_running() and self.connection.preferred_transport is not \
                HttpTransportType.long_polling:
            self.connection.stream("Counter", [1000, 50])
        self.connection.stop()
        assert self.closed.wait(scaled(WAIT)), "on_close never came"


def _session(base: str, transport: HttpTransportType, encoding: HubProtocolEncoding) -> Session:
    connection = (
        HubConnectionBuilder()
        .with_url(base + "/testhub", options={"transport": transport})
        .with_hub_protocol(encoding)
        .build()
    )
    session = Session(connection)
    assert connection.start()
    assert session.opened.wait(scaled(WAIT)), "on_open never came"
    return session


@pytest.mark.parametrize("encoding", [HubProtocolEncoding.text, HubProtocolEncoding.binary], ids=["json", "messagepack"])
def test_signalrcore_over_websockets(base: str, encoding: HubProtocolEncoding) -> None:
    session = _session(base, HttpTransportType.web_sockets, encoding)
    try:
        assert session.invoke("Echo", ["héllo ✓ 你好"]).wait().result == "héllo ✓ 你好"
        assert session.invoke("GetActiveTransportName", []).wait().result == "WebSockets"
        assert session.invoke("GetCallerConnectionId", []).wait().result

        received: list[Any] = []
        got = threading.Event()

        def on_message(args: list[Any]) -> None:
            received.append(args)
            got.set()

        session.connection.on("Message", on_message)
        session.invoke("InvokeWithString", ["hi"]).wait()
        assert got.wait(scaled(WAIT))
        assert received == [["hi"]]

        failed = session.invoke("ThrowException", ["An error occurred."]).wait()
        assert failed.error == (
            "An unexpected error occurred invoking 'ThrowException' on the server. "
            "InvalidOperationException: An error occurred."
        )
        assert session.invoke("NoSuchMethod", []).wait().error == "Unknown hub method 'NoSuchMethod'"

        assert session.stream("Counter", [3, 20]) == [0, 1, 2]

        if encoding is HubProtocolEncoding.text:
            # signalrcore 1.0.2 writes MessagePack uploads without the invocation-id slot ([1, {}, target, ...]),
            # which .NET rejects like we do ("Reading 'target' as String failed."): uploads are JSON-only here.
            upload = Subject()
            session.invoke("StreamingConcat", upload)
            upload.next("a")
            upload.next("b")
            upload.complete()
        # signalrcore does not surface an upload's result; the connection still answers after it.
        assert session.invoke("Echo", ["after upload"]).wait().result == "after upload"
    finally:
        session.stop()


def test_signalrcore_over_long_polling(base: str) -> None:
    # signalrcore's long polling POSTs its handshake before the first poll (accepted, as .NET does) and reads only the
    # first record of each poll response, so this sticks to calls answered by exactly one record.
    session = _session(base, HttpTransportType.long_polling, HubProtocolEncoding.text)
    try:
        assert session.invoke("Echo", ["héllo ✓"]).wait().result == "héllo ✓"
        assert session.invoke("GetActiveTransportName", []).wait().result == "LongPolling"
        assert session.invoke("NoSuchMethod", []).wait().error == "Unknown hub method 'NoSuchMethod'"
    finally:
        session.stop()
