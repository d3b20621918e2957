"""Codec micro-benchmark: encode/decode messages per second for both hub protocols.

    .venv/bin/python scripts/bench_codec.py [--seconds 1.0]

Workload: an AudioFrame-like invocation (640-byte PCM payload, bytes -> base64 in JSON, bin in MessagePack)
and a small Completion. Prints the best of 5 runs per case.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from protocol import CompletionMessage, HubMessage, InvocationMessage, JsonHubProtocol, MessagePackHubProtocol
from protocol.codec import HubProtocol


def rate(fn: Callable[[], object], seconds: float) -> float:
    best = 0.0
    for _ in range(5):
        count = 0
        start = time.perf_counter()
        deadline = start + seconds / 5
        while time.perf_counter() < deadline:
            for _ in range(100):
                fn()
            count += 100
        best = max(best, count / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    frame = {
        "conversationId": "conv_01HXDEF456GHIJKLMNOPQRSTUV", "track": "caller", "frame": 1234,
        "encoding": "pcm_s16le", "sampleRate": 16000, "channels": 1, "timestampMs": 24680, "data": bytes(640),
    }
    cases: list[tuple[str, HubMessage]] = [
        ("AudioFrame 640 B", InvocationMessage("AudioFrame", [frame])),
        ("Completion", CompletionMessage.with_result("42", "héllo")),
    ]
    protocols: list[HubProtocol] = [JsonHubProtocol(), MessagePackHubProtocol()]
    print(f"{'message':<18} {'protocol':<12} {'encode/s':>12} {'decode/s':>12}")
    for name, message in cases:
        for protocol in protocols:
            wire = protocol.encode(message)
            enc = rate(lambda p=protocol, m=message: p.encode(m), args.seconds)  # type: ignore[misc]
            dec = rate(lambda p=protocol, w=wire: p.decode_all(w), args.seconds)  # type: ignore[misc]
            print(f"{name:<18} {protocol.name:<12} {enc:>12,.0f} {dec:>12,.0f}")


if __name__ == "__main__":
    main()
