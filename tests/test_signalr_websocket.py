"""The WebSockets transport with a real WebSocket client: negotiate, handshake, invoke, errors, both protocols."""

from __future__ import annotations

import httpx
import orjson
import pytest
from starlette.testclient import TestClient

from hub.app import create_app
from protocol import CompletionMessage, InvocationMessage, MessagePackHubProtocol


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(conformance=True))


def test_negotiate_v1_and_errors(client: TestClient) -> None:
    body = client.post("/testhub/negotiate?negotiateVersion=1").json()
    assert body["negotiateVersion"] == 1 and body["connectionId"] != body["connectionToken"]
    assert client.post("/testhub/negotiate?negotiateVersion=abc").json() == {
        "error": "The client requested a non-integer protocol version."
    }
    assert client.get("/testhub/negotiate").status_code == 405


def test_json_invoke_echo_unknown_method_and_exception(client: TestClient) -> None:
    with client.websocket_connect("/testhub") as ws:
        ws.send_text('{"protocol":"json","version":1}\x1e')
        assert ws.receive_text() == "{}\x1e"
        ws.send_text('{"type":1,"invocationId":"0","target":"echo","arguments":["héllo"]}\x1e')
        assert orjson.loads(ws.receive_text()[:-1]) == {"type": 3, "invocationId": "0", "result": "héllo"}
        ws.send_text('{"type":1,"invocationId":"1","target":"Nope","arguments":[]}\x1e')
        assert orjson.loads(ws.receive_text()[:-1])["error"] == "Unknown hub method 'Nope'"
        ws.send_text('{"type":1,"invocationId":"2","target":"ThrowException","arguments":["An error occurred."]}\x1e')
        assert orjson.loads(ws.receive_text()[:-1])["error"] == (
            "An unexpected error occurred invoking 'ThrowException' on the server. InvalidOperationException: An error occurred."
        )


def test_messagepack_invoke(client: TestClient) -> None:
    mp = MessagePackHubProtocol()
    with client.websocket_connect("/testhub") as ws:
        ws.send_text('{"protocol":"messagepack","version":1}\x1e')
        assert ws.receive_bytes() == b"{}\x1e"
        ws.send_bytes(mp.encode(InvocationMessage("Echo", ["x"], "7")))
        assert mp.decode_all(ws.receive_bytes()) == [CompletionMessage.with_result("7", "x")]


def test_bad_handshake_gets_the_dotnet_text(client: TestClient) -> None:
    with client.websocket_connect("/testhub") as ws:
        ws.send_text('{"protocol":"xml","version":1}\x1e')
        assert orjson.loads(ws.receive_text()[:-1]) == {"error": "The protocol 'xml' is not supported."}


def test_malformed_message_closes_with_protocol_error(client: TestClient) -> None:
    with client.websocket_connect("/testhub") as ws:
        ws.send_text('{"protocol":"json","version":1}\x1e')
        ws.receive_text()
        ws.send_text("garbage\x1e")
        close = orjson.loads(ws.receive_text()[:-1])
        assert close["type"] == 7 and close["error"].startswith("Connection closed with an error.")
    assert isinstance(httpx.__version__, str)


def test_idle_connection_gets_keep_alive_pings() -> None:
    from starlette.applications import Starlette

    from hub.conformance import TestHub
    from hub.signalr.endpoint import hub_route
    from hub.signalr.options import HubOptions

    app = Starlette(routes=[hub_route("/h", TestHub, HubOptions(keep_alive=0.05, heartbeat_interval=0.02))])
    with TestClient(app).websocket_connect("/h") as ws:
        ws.send_text('{"protocol":"json","version":1}\x1e')
        assert ws.receive_text() == "{}\x1e"
        assert ws.receive_text() == '{"type":6}\x1e'
        assert ws.receive_text() == '{"type":6}\x1e'
