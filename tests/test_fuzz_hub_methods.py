"""Hostile input on every VoiceHub method (issue 8, point 5): hypothesis generates the method (and case variants of its
name), the number of arguments and their values, and sends them over a real connection (JSON and MessagePack) to a hub
process. Every answer is a result or a documented Completion error (a HubException text, the .NET binding or
authorization texts); the hub logs no traceback, keeps the connection (unless the call legitimately ends it) and keeps
serving. A conversation id of a live call is among the generated values so calls reach past the id checks.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.client.signalr import HubClient, HubError
from hub.client.voice import VoiceCaller
from tests.reliability_rig import FUZZ_SCALE, HubProcess, token

ARITY = {"SendAudioAsync": (1, 1), "SendDtmfAsync": (1, 1), "EndSessionAsync": (1, 1), "RequestReconnectionAsync": (0, 0),
         "ListConversations": (0, 1), "Subscribe": (1, 2), "Unsubscribe": (1, 1), "UpdateSubscription": (2, 2),
         "SubscribeAll": (0, 2), "UnsubscribeAll": (0, 0), "GetPresence": (1, 1), "Whisper": (2, 2), "Barge": (1, 1),
         "ReleaseBarge": (1, 1), "SendSupervisorAudio": (2, 2), "EndConversation": (1, 2)}
METHODS = list(ARITY)
CALLER_METHODS = METHODS[:4]
LIVE = "@live-conversation"
WORDS = [LIVE, "conv_", "conv_x", "conv_" + "9" * 200, "user_ended", "timeout", "transfer_complete", "1", "#", "**",
         "none", "mixed", "caller", "agent", "both", "mulaw", "pcm_s16le", "in_progress", "AAAA", "AAA=", "////", "",
         "\u0000", "\ud7ff" * 3, "A" * 5000]
OPTION_KEYS = ["transcript", "partials", "audio", "encoding", "sampleRate", "fromSeq", "status", "agentId", "channel",
               "direction", "tags", "other"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.integers(-2, 50_000),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40), st.sampled_from(WORDS))
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(OPTION_KEYS), st.text(max_size=8)), inner,
                                                 max_size=4)), max_leaves=12)
binary_values = st.one_of(json_values, st.binary(max_size=2000), st.binary(min_size=640, max_size=640))
names = st.sampled_from(METHODS).flatmap(lambda m: st.sampled_from([m, m.lower(), m.upper()]))
DOCUMENTED = (" HubException: ", "Failed to invoke '", "Unknown hub method '")


class Fuzzer:
    """A caller and a monitor connection per protocol, re-opened when a call legitimately ends them."""

    def __init__(self, base: str, tok: str, loop: asyncio.AbstractEventLoop) -> None:
        self.base, self.token, self.loop = base, tok, loop
        self.caller: dict[bool, VoiceCaller] = {}
        self.monitor: dict[bool, HubClient] = {}
        self.cases = 0
        self.results = 0
        self.rejections: dict[str, int] = {}

    def run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    async def _caller(self, msgpack: bool) -> VoiceCaller:
        caller = self.caller.get(msgpack)
        if caller is None or caller.hub.closed.is_set():
            if caller is not None:
                await caller.close()
            caller = self.caller[msgpack] = await VoiceCaller.connect(self.base, self.token, agent_id="agt_fuzz",
                                                                    msgpack=msgpack)
        return caller

    async def _monitor(self, msgpack: bool) -> HubClient:
        monitor = self.monitor.get(msgpack)
        if monitor is None or monitor.closed.is_set():
            if monitor is not None:
                await monitor.close()
            monitor = self.monitor[msgpack] = await HubClient.connect(self.base + "/hubs/voice", token=self.token,
                                                                      msgpack=msgpack)
        return monitor

    async def case(self, as_caller: bool, msgpack: bool, method: str, arguments: list[Any]) -> None:
        caller = await self._caller(msgpack)
        live = caller.conversation_id
        arguments = [_replace(a, live) for a in arguments]
        client = caller.hub if as_caller else await self._monitor(msgpack)
        self.cases += 1
        try:
            await client.invoke(method, *arguments, seconds=10)
            self.results += 1
        except HubError as exc:
            text = str(exc)
            if text.startswith(("connection closed before the answer", "cannot invoke")):
                # only a call that ends the session may close the caller's connection (this one or an earlier one)
                assert caller.log.of("SessionEnded") or method.lower() in ("endsessionasync", "endconversation"), \
                    f"{method}{arguments}: {text}"
                return
            assert any(mark in text for mark in DOCUMENTED), f"{method}{arguments!r}: undocumented error {text!r}"
            kind = text.split(" HubException: ")[-1][:60]
            self.rejections[kind] = self.rejections.get(kind, 0) + 1

    async def close(self) -> None:
        for client in [*self.caller.values(), *self.monitor.values()]:
            await client.close()


def _replace(value: Any, live: str) -> Any:
    if value == LIVE:
        return live
    if isinstance(value, list):
        return [_replace(v, live) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, live) for k, v in value.items()}
    return value


def test_every_hub_method_answers_hostile_arguments_with_documented_errors() -> None:
    loop = asyncio.new_event_loop()
    with HubProcess() as hub:
        tok = loop.run_until_complete(token(hub.base))
        fuzzer = Fuzzer(hub.base, tok, loop)
        try:
            @settings(max_examples=1000 * FUZZ_SCALE, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(wrong_mode=st.integers(0, 9), msgpack=st.booleans(), method=names, data=st.data())
            def one(wrong_mode: int, msgpack: bool, method: str, data: st.DataObject) -> None:
                values = binary_values if msgpack else json_values
                low, high = ARITY[next(m for m in METHODS if m.lower() == method.lower())]
                count = data.draw(st.one_of(st.integers(low, high), st.integers(0, 4)))
                arguments = [data.draw(st.one_of(st.just(LIVE), values) if i == 0 else values) for i in range(count)]
                as_caller = method.lower() in {m.lower() for m in CALLER_METHODS}
                fuzzer.run(fuzzer.case(as_caller != (wrong_mode == 0), msgpack, method, arguments))

            one()
            assert hub.healthz() == 200
            log = hub.log()
        finally:
            loop.run_until_complete(fuzzer.close())
            loop.close()
    assert "Traceback" not in log, log[log.find("Traceback") - 500:][:4000]
    print(f"\n{fuzzer.cases} hub method cases: {fuzzer.results} results, "
          f"{sum(fuzzer.rejections.values())} documented rejections ({len(fuzzer.rejections)} kinds)")
    for kind, count in sorted(fuzzer.rejections.items(), key=lambda item: -item[1])[:15]:
        print(f"  {count:4d} {kind}")
    assert fuzzer.cases >= 1000 * FUZZ_SCALE and fuzzer.results > 50
