"""What the benchmark's processes share: timestamps inside frames, latency histograms, ports, workload constants."""

from __future__ import annotations

import base64
import random
import socket
import struct
import time
from typing import Any

FRAME_BYTES = 960  # 20 ms of PCM16 mono at 24 kHz: the agent frame the pipeline publishes
FRAMES_PER_SECOND = 50
TRANSCRIPT_INTERVAL = 2.0
STAMP = struct.Struct("<q")  # publish time (wall clock, microseconds) in the first 8 bytes of every frame
NOISE = random.Random(20).randbytes(FRAME_BYTES - STAMP.size)  # audio does not compress: neither may the frames
HIST_SCALE = 10  # latency histogram buckets of 0.1 ms up to 2 s, then one overflow bucket per 10 ms
HIST_LINEAR = 20_000


def now_us() -> int:
    return time.time_ns() // 1000


def stamped_frame(at_us: int) -> bytes:
    return STAMP.pack(at_us) + NOISE


def stamp_of(data: Any) -> int:
    """Publish time of a frame's `data`: bytes (MessagePack) or base64 text (JSON)."""
    if isinstance(data, str):
        return int(STAMP.unpack(base64.b64decode(data[:12])[:8])[0])
    return int(STAMP.unpack_from(data)[0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Histogram:
    """Latency counts in 0.1 ms buckets (10 ms past 2 s); mergeable across processes as a sparse dict."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.n = 0
        self.max_ms = 0.0

    def add(self, ms: float) -> None:
        if ms < 0:
            ms = 0.0
        bucket = int(ms * HIST_SCALE)
        if bucket >= HIST_LINEAR:
            bucket = HIST_LINEAR + int(ms / 10)
        self.counts[bucket] = self.counts.get(bucket, 0) + 1
        self.n += 1
        if ms > self.max_ms:
            self.max_ms = ms

    def merge(self, other: dict[str, Any]) -> None:
        for key, count in other["counts"].items():
            bucket = int(key)
            self.counts[bucket] = self.counts.get(bucket, 0) + int(count)
        self.n += int(other["n"])
        self.max_ms = max(self.max_ms, float(other["max_ms"]))

    def dump(self) -> dict[str, Any]:
        return {"counts": {str(k): v for k, v in self.counts.items()}, "n": self.n, "max_ms": self.max_ms}

    def percentile(self, p: float) -> float:
        if not self.n:
            return float("nan")
        rank = p / 100 * self.n
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                if bucket >= HIST_LINEAR:
                    return float((bucket - HIST_LINEAR) * 10 + 10)
                return (bucket + 1) / HIST_SCALE
        return self.max_ms
