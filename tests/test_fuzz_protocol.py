"""Hostile input below the hub methods (issue 8, point 5), against a real hub process: negotiate requests (methods, query
keys, credentials, bodies), SignalR handshakes and hub protocol frames on both codecs (JSON records and MessagePack
length-prefixed arrays), and oversized frames. The hub answers with the documented statuses and texts, never a 5xx,
logs no traceback, and keeps serving a well-behaved client afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.reliability_rig import FUZZ_SCALE, HubProcess, token

RS = b"\x1e"


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples * FUZZ_SCALE, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))
QUERY_KEYS = ["negotiateVersion", "NEGOTIATEVERSION", "useStatefulReconnect", "agentId", "access_token", "id",
              "sessionId", "metadata"]
texts = st.text(max_size=30)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), texts,
                         st.floats(allow_nan=False, allow_infinity=False))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                   st.dictionaries(texts, inner, max_size=4)), max_leaves=10)
FRAME_KEYS = ["type", "invocationId", "target", "arguments", "streamIds", "item", "result", "error", "allowReconnect",
              "headers", "sequenceId"]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class Rig:
    def __init__(self, hub: HubProcess) -> None:
        import asyncio

        self.hub = hub
        self.token = asyncio.run(token(hub.base))
        self.http = httpx.Client(timeout=5)
        self.ws_base = hub.base.replace("http://", "ws://") + "/hubs/voice"

    def negotiate(self) -> str:
        answer = self.http.post(self.hub.base + "/hubs/voice/negotiate?negotiateVersion=1",
                                headers={"Authorization": f"Bearer {self.token}"})
        return str(answer.json()["connectionToken"])

    @contextmanager
    def open(self) -> Iterator[ClientConnection]:
        with connect(f"{self.ws_base}?id={self.negotiate()}&access_token={self.token}", open_timeout=5,
                     max_size=None) as ws:
            yield ws

    @contextmanager
    def handshaken(self, protocol: str) -> Iterator[ClientConnection]:
        with self.open() as ws:
            ws.send(json.dumps({"protocol": protocol, "version": 1}).encode() + RS)
            assert ws.recv(timeout=5)[:3] in ("{}\x1e", b"{}\x1e")
            yield ws

    def still_serving(self) -> None:
        with self.handshaken("json") as ws:
            ws.send(b'{"type":1,"invocationId":"1","target":"ListConversations","arguments":[]}' + RS)
            reply = ws.recv(timeout=5)
            assert '"type":3' in (reply if isinstance(reply, str) else reply.decode()), reply


def _drain(ws: ClientConnection, first: float, then: float = 0.02) -> list[str | bytes]:
    """What the server sends: waits up to `first` s for a frame, then `then` s for each further one (or the close)."""
    got: list[str | bytes] = []
    try:
        while True:
            got.append(ws.recv(timeout=then if got else first))
    except (TimeoutError, ConnectionClosed):
        return got


def test_negotiate_handshake_and_frame_fuzz() -> None:
    with HubProcess() as hub:
        rig = Rig(hub)
        counts = {"negotiate": 0, "handshake": 0, "json frames": 0, "messagepack frames": 0}
        try:
            @fuzz_settings(300)
            @given(method=st.sampled_from(["POST", "GET", "PUT", "DELETE", "OPTIONS", "PATCH"]),
                   query=st.dictionaries(st.one_of(st.sampled_from(QUERY_KEYS), texts), texts, max_size=4),
                   credential=st.sampled_from(["good", "junk", "key", "none"]), body=st.binary(max_size=200))
            def negotiate(method: str, query: dict[str, str], credential: str, body: bytes) -> None:
                headers = {"good": {"Authorization": f"Bearer {rig.token}"}, "junk": {"Authorization": "Bearer x.y.z"},
                           "key": {"Authorization": "Bearer vsnp_live_" + "a" * 20}, "none": {}}[credential]
                answer = rig.http.request(method, hub.base + "/hubs/voice/negotiate", params=query, headers=headers,
                                          content=body)
                counts["negotiate"] += 1
                assert answer.status_code in (200, 401, 403, 404, 405, 429), (answer.status_code, answer.text)
                if answer.status_code == 200:
                    document = answer.json()
                    assert "connectionId" in document or "error" in document

            negotiate()

            handshakes = st.one_of(
                st.builds(lambda p, v: json.dumps({"protocol": p, "version": v}).encode(),
                          st.one_of(st.sampled_from(["json", "messagepack", "JSON", ""]), texts), json_values),
                st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()))

            @fuzz_settings(120)
            @given(payload=handshakes, separator=st.booleans())
            def handshake(payload: bytes, separator: bool) -> None:
                with rig.open() as ws:
                    ws.send(payload + (RS if separator else b""))
                    got = _drain(ws, 2.0 if separator else 0.02)
                counts["handshake"] += 1
                for frame in got:
                    data = frame.encode() if isinstance(frame, str) else frame
                    answer = json.loads(data.split(RS)[0])
                    assert answer == {} or isinstance(answer.get("error"), str), answer

            handshake()

            json_frames = st.one_of(
                st.dictionaries(st.sampled_from(FRAME_KEYS), json_values, max_size=6).map(lambda d: json.dumps(d).encode()),
                st.builds(lambda t, rest: json.dumps({"type": t, **rest}).encode(), st.integers(-1, 12),
                          st.dictionaries(st.sampled_from(FRAME_KEYS), json_values, max_size=5)),
                st.binary(max_size=200))

            @fuzz_settings(120)
            @given(frames=st.lists(json_frames, min_size=1, max_size=3))
            def json_frame(frames: list[bytes]) -> None:
                with rig.handshaken("json") as ws:
                    ws.send(b"".join(f + RS for f in frames))
                    _drain(ws, 0.05)
                counts["json frames"] += 1

            json_frame()

            packable = st.recursive(st.one_of(json_scalars, st.binary(max_size=50)),
                                    lambda inner: st.one_of(st.lists(inner, max_size=6),
                                                            st.dictionaries(texts, inner, max_size=3)), max_leaves=12)
            msgpack_frames = st.one_of(
                st.builds(lambda t, rest: msgpack.packb([t, *rest]), st.integers(-1, 12), st.lists(packable, max_size=6)),
                st.binary(max_size=200))

            @fuzz_settings(120)
            @given(frames=st.lists(msgpack_frames, min_size=1, max_size=3), lie=st.integers(0, 3))
            def msgpack_frame(frames: list[bytes], lie: int) -> None:
                with rig.handshaken("messagepack") as ws:
                    ws.send(b"".join(_varint(len(f) + (lie if lie == 3 else 0)) + f for f in frames))
                    _drain(ws, 0.05)
                counts["messagepack frames"] += 1

            msgpack_frame()
            rig.still_serving()
        finally:
            rig.http.close()
        log = hub.log()
    assert "Traceback" not in log, log[log.find("Traceback") - 300:][:4000]
    print("\nprotocol fuzz cases: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


def test_oversized_frames_close_only_their_connection() -> None:
    with HubProcess() as hub:
        rig = Rig(hub)
        try:
            with rig.handshaken("json") as ws:  # a record past the hub's 32 KB message limit
                ws.send(b'{"type":1,"target":"SendDtmfAsync","arguments":["' + b"1" * 40_000 + b'"]}' + RS)
                frames = _drain(ws, 2, 0.5)
            closes = [json.loads(f.split("\x1e")[0]) for f in frames if isinstance(f, str) and '"type":7' in f]
            assert closes and "error" in closes[0], frames
            with rig.handshaken("json") as ws:  # a WebSocket message past the 1 MB transport limit
                ws.send(b"x" * (1024 * 1024 + 10))
                _drain(ws, 2, 0.5)
            assert ws.close_code == 1009, ws.close_code
            rig.still_serving()
        finally:
            rig.http.close()
        log = hub.log()
    assert "Traceback" not in log, log[log.find("Traceback") - 300:][:4000]
