"""The conformance app (signalr-protocol.md section 3), mounted by `serve --conformance`.

Hubs, routes and texts are the ones Microsoft's own functional-test server has, so a SignalR client's
functional tests run against us unchanged. Extra methods used only by this project's tests are marked.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import jwt
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from hub.signalr.context import HubConnectionContext
from hub.signalr.endpoint import HubEndpoint, HubRoute, Unauthorized
from hub.signalr.hub import Hub, HubError, hub_method
from hub.signalr.options import HubOptions
from hub.signalr.streams import UploadStream
from protocol.negotiate import Transport

JWT_SECRET = "voicehub-conformance-only-secret-0123456789"
JWT_LIFETIME = 5.0
JWT_LEEWAY = 300.0  # .NET's default clock skew


class InvalidOperationException(Exception):
    pass


class TestHub(Hub):
    @hub_method("Echo")
    def echo(self, message: Any) -> Any:
        return message

    @hub_method("GetCallerConnectionId")
    def get_caller_connection_id(self) -> str:
        return self.connection_id

    @hub_method("GetNumRedirects")
    def get_num_redirects(self) -> int:
        return int(self.context.query.get("numredirects", "0"))

    @hub_method("GetActiveTransportName")
    def get_active_transport_name(self) -> str:
        transport = self.context.transport
        return transport.value if transport is not None else ""

    @hub_method("ThrowException")
    def throw_exception(self, message: str) -> None:
        raise InvalidOperationException(message)

    @hub_method("InvokeWithString")
    def invoke_with_string(self, message: str) -> None:
        self.clients.caller.send("Message", message)

    @hub_method("SendCustomObject")
    def send_custom_object(self, obj: Any) -> None:
        self.clients.caller.send("CustomObject", obj)

    @hub_method("Stream")
    async def stream(self) -> AsyncIterator[str]:
        for item in ("a", "b", "c"):
            yield item

    @hub_method("InfiniteStream")
    async def infinite_stream(self) -> AsyncIterator[str]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.clients.caller.send("StreamCanceled")
            raise
        yield ""  # pragma: no cover - never reached

    @hub_method("StreamingConcat")
    async def streaming_concat(self, stream: UploadStream[str]) -> str:
        return "".join([item async for item in stream])

    @hub_method("EmptyStream")
    async def empty_stream(self) -> AsyncIterator[int]:
        empty: tuple[int, ...] = ()
        for item in empty:
            yield item

    @hub_method("StreamThrowException")
    async def stream_throw_exception(self, message: str) -> AsyncIterator[str]:
        raise InvalidOperationException(message)
        yield ""  # pragma: no cover - makes this an async generator

    @hub_method("EchoComplexObject")
    def echo_complex_object(self, obj: Any) -> Any:
        return obj

    @hub_method("SendComplexObject")
    def send_complex_object(self) -> Any:
        return {
            "ByteArray": b"\x01\x02\x03",
            "DateTime": datetime(2000, 1, 1, tzinfo=UTC),
            "Guid": "00010203-0405-0607-0706-050403020100",
            "IntArray": [1, 2, 3],
            "String": "hello world",
        }

    @hub_method("GetContentTypeHeader")
    def get_content_type_header(self) -> str | None:
        return self.context.header("content-type")

    @hub_method("GetHeader")
    def get_header(self, name: str) -> str | None:
        return self.context.header(name)

    @hub_method("GetCookie")
    def get_cookie(self, name: str) -> str | None:
        return self.context.cookie(name)

    # --- extras for this project's own tests --------------------------------------------------------
    @hub_method("JoinGroup")
    def join_group(self, name: str) -> None:
        self.groups.add(name)

    @hub_method("LeaveGroup")
    def leave_group(self, name: str) -> None:
        self.groups.remove(name)

    @hub_method("SendToGroup")
    def send_to_group(self, name: str, message: Any) -> None:
        self.clients.group(name).send("GroupMessage", name, message)

    @hub_method("SendToOthers")
    def send_to_others(self, message: Any) -> None:
        self.clients.others.send("Message", message)

    @hub_method("SendToAll")
    def send_to_all(self, message: Any) -> None:
        self.clients.all.send("Message", message)

    @hub_method("CloseConnection")
    def close_connection(self, allow_reconnect: bool) -> None:
        self.context.close("Connection closed with an error. HubException: closed by request",
                           allow_reconnect=allow_reconnect)

    @hub_method("Counter")
    async def counter(self, count: int, delay_ms: int) -> AsyncIterator[int]:
        """0 .. count-1, each after `delay_ms` (a stream that is still running when a test needs it)."""
        for index in range(count):
            await asyncio.sleep(delay_ms / 1000)
            yield index

    @hub_method("InvokeCaller")
    async def invoke_caller(self, target: str) -> Any:
        return await self.clients.caller.invoke(target, seconds=10)


class HubWithAuthorization(Hub):
    @hub_method("Echo")
    def echo(self, message: str) -> str:
        return message


class UncreatableHub(Hub):
    def __init__(self) -> None:
        raise InvalidOperationException("This hub cannot be created.")


def generate_token() -> str:
    now = time.time()
    return jwt.encode({"sub": "testuser", "nameid": "testuser", "iat": int(now), "exp": now + JWT_LIFETIME},
                      JWT_SECRET, algorithm="HS256")


async def authenticate_test_user(conn: HTTPConnection) -> str:
    header = conn.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else conn.query_params.get("access_token", "")
    if not token:
        raise Unauthorized()
    try:
        claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], leeway=JWT_LEEWAY)
    except jwt.PyJWTError:
        raise Unauthorized() from None
    return str(claims["sub"])


def negotiate_cookies(request: Request, response: Response) -> None:
    secure = request.url.scheme == "https"
    extra: dict[str, Any] = {"samesite": "none", "secure": True} if secure else {}
    response.set_cookie("testCookie", "testValue", **extra)
    response.set_cookie("testCookie2", "testValue2", **extra)
    response.set_cookie("expiredCookie", "doesntmatter", expires=0, max_age=0, **extra)


async def _echo_data(connection: HubConnectionContext, data: bytes) -> bool:
    try:
        connection.send_raw(data.decode("utf-8"))
    except UnicodeDecodeError:
        connection.send_raw(data)
    return True


def _open_raw(connection: HubConnectionContext) -> None:
    from hub.signalr.context import State

    connection.state = State.OPEN


class EchoEndpoint(HubEndpoint):
    """`/echo`: a raw connection handler, no handshake: every byte received goes back."""

    def __init__(self) -> None:
        super().__init__(Hub, HubOptions(keep_alive=0), on_negotiate=negotiate_cookies, data_handler=self._echo)

    async def _echo(self, connection: HubConnectionContext, data: bytes) -> bool:
        _open_raw(connection)
        return await _echo_data(connection, data)


def conformance_routes() -> list[BaseRoute]:
    testhub = HubEndpoint(TestHub, HubOptions(detailed_errors=True), on_negotiate=negotiate_cookies)
    no_ws = HubEndpoint(
        TestHub,
        HubOptions(detailed_errors=True, transports=(Transport.SERVER_SENT_EVENTS, Transport.LONG_POLLING)),
        on_negotiate=negotiate_cookies,
    )
    authorized = HubEndpoint(HubWithAuthorization, HubOptions(detailed_errors=True), authenticate=authenticate_test_user,
                             on_negotiate=negotiate_cookies)
    uncreatable = HubEndpoint(UncreatableHub, HubOptions(detailed_errors=True), on_negotiate=negotiate_cookies)
    redirects = itertools.count()

    async def redirect(request: Request) -> Response:
        base = request.query_params.get("baseUrl", str(request.base_url).rstrip("/"))
        response = JSONResponse({"url": f"{base}/testHub?numRedirects={next(redirects) + 1}"})
        negotiate_cookies(request, response)
        return response

    async def generate_jwt(request: Request) -> Response:
        return PlainTextResponse(generate_token())

    async def client_result(request: Request) -> Response:
        connection = testhub.manager.by_connection_id(request.path_params["connection_id"])
        if connection is None:
            return PlainTextResponse("Connection not found.", status_code=404)
        try:
            result = await connection.invoke_client("Result", [], 30.0)
        except HubError as exc:
            return PlainTextResponse(str(exc))
        return PlainTextResponse(str(result))

    async def deployment(request: Request) -> Response:
        return JSONResponse({"server": "voicehub", "conformance": True})

    async def bad_negotiate(request: Request) -> Response:
        return PlainTextResponse("Some response from server", status_code=400)

    return [
        HubRoute("/testhub", testhub),
        HubRoute("/testhub-nowebsockets", no_ws),
        HubRoute("/authorizedhub", authorized),
        HubRoute("/uncreatable", uncreatable),
        HubRoute("/echo", EchoEndpoint()),
        Route("/redirect/negotiate", redirect, methods=["POST", "GET"]),
        Route("/generateJwtToken", generate_jwt, methods=["GET"]),
        Route("/clientresult/{connection_id}", client_result, methods=["GET"]),
        Route("/deployment", deployment, methods=["GET"]),
        Route("/bad-negotiate/negotiate", bad_negotiate, methods=["POST", "GET"]),
    ]


def conformance_endpoints(routes: list[BaseRoute]) -> list[HubEndpoint]:
    return [r.endpoint for r in routes if isinstance(r, HubRoute)]
