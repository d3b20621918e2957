"""Audio hot-path micro-benchmark: per-frame cost of resampling, mu-law, mixing and the full fan-out render.

    .venv/bin/python scripts/bench_audio.py [--seconds 1.0]

Workload: 20 ms frames of a seeded noise + tone signal (caller PCM16 16 kHz, agent PCM16 24 kHz). Prints the
best of 5 runs per case as frames/s and as conversations one core sustains at 50 frames/s per track. A render
"frame" is one caller push plus one agent push (both tracks' 20 ms), so its budget is 50 per conversation-second;
the single-track cases assume two such operations per conversation frame (one per track).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hub.audio import mulaw
from hub.audio.mix import mix
from hub.audio.render import AudioFormat, ConversationAudioRenderer
from hub.audio.resample import Resampler
from hub.recording import Recorder


def rate(fn: Callable[[], object], seconds: float) -> float:
    best = 0.0
    for _ in range(5):
        count = 0
        start = time.perf_counter()
        deadline = start + seconds / 5
        while time.perf_counter() < deadline:
            for _ in range(50):
                fn()
            count += 50
        best = max(best, count / (time.perf_counter() - start))
    return best


def signal(rate_hz: int, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    x = 9000 * np.sin(2 * np.pi * 440 * t) + rng.normal(0, 2000, t.size)
    return np.clip(x, -32768, 32767).astype(np.int16)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    caller = signal(16000, 0.02, 1)
    agent = signal(24000, 0.02, 2)
    caller_bytes, agent_bytes = caller.tobytes(), agent.tobytes()
    loud = (caller.astype(np.int32) * 3).clip(-32768, 32767).astype(np.int16)

    cases: list[tuple[str, Callable[[], object], int]] = []
    for a, b in [(16000, 24000), (24000, 16000), (16000, 8000), (24000, 8000), (16000, 48000), (24000, 48000)]:
        resampler = Resampler(a, b)
        frame = caller if a == 16000 else agent
        cases.append((f"resample {a // 1000}k->{b // 1000}k", lambda r=resampler, f=frame: r.process(f), 2))
    narrow = caller[::2].copy()
    cases.append(("mulaw encode 8k", lambda: mulaw.encode_bytes(narrow), 2))
    coded = mulaw.encode_bytes(narrow)
    cases.append(("mulaw decode 8k", lambda: mulaw.decode_bytes(coded), 2))
    quiet = caller // 2
    cases.append(("mix 16k (quiet)", lambda: mix(quiet, quiet), 1))
    cases.append(("mix 16k (limited)", lambda: mix(loud, loud), 1))

    four = {
        AudioFormat("caller", "mulaw", 8000),
        AudioFormat("agent", "mulaw", 8000),
        AudioFormat("mixed", "pcm_s16le", 16000),
        AudioFormat("mixed", "mulaw", 8000),
    }
    source_only = {AudioFormat("caller"), AudioFormat("agent", "pcm_s16le", 24000)}
    for label, formats in [("render 4 formats", four), ("render source only", source_only)]:
        renderer = ConversationAudioRenderer()
        renderer.set_formats(formats)
        clock = [0]

        def push_both(r: ConversationAudioRenderer = renderer, c: list[int] = clock) -> None:
            r.push("caller", caller_bytes, c[0])
            r.push("agent", agent_bytes, c[0])
            c[0] += 20

        cases.append((label, push_both, 1))

    print(f"{'case':<22} {'us/op':>8} {'ops/s':>10} {'conversations/core':>20}")
    for name, fn, per_conversation_frame in cases:
        ops = rate(fn, args.seconds)
        conversations = ops / (50 * per_conversation_frame)
        print(f"{name:<22} {1e6 / ops:>8.1f} {ops:>10.0f} {conversations:>20.0f}")

    with tempfile.TemporaryDirectory() as directory:
        recorder = Recorder(Path(directory) / "bench.mp3")
        call_seconds = 60
        for i in range(call_seconds * 50):
            recorder.add("caller", caller_bytes, 20 * i)
            recorder.add("agent", agent_bytes, 20 * i)
        start = time.perf_counter()
        result = recorder.finish()
        elapsed = time.perf_counter() - start
        speed = call_seconds / elapsed
        print(f"recording: {call_seconds} s call encoded in {elapsed:.2f} s ({speed:.0f}x real time), {result.bytes} bytes")


if __name__ == "__main__":
    main()
