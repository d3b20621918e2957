"""Fan-out latency (contract section 6): seconds from an event's `timestamp` (set by its publisher) until this node has
queued it for every subscriber, as a Prometheus histogram. Clocks of publisher and hub must be in sync (NTP); a negative
difference counts as 0."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LatencyHistogram:
    def __init__(self, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        index = len(self.buckets)
        for i, bound in enumerate(self.buckets):
            if seconds <= bound:
                index = i
                break
        self.counts[index] += 1
        self.sum += seconds
        self.count += 1

    def observe_event(self, event: dict[str, Any]) -> None:
        stamp = event.get("timestamp")
        if not isinstance(stamp, str):
            return
        try:
            published = datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            return
        self.observe(time.time() - published)

    def render(self, name: str) -> list[str]:
        lines = []
        cumulative = 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            cumulative += count
            lines.append(f'{name}_bucket{{le="{bound:g}"}} {cumulative}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        lines.append(f"{name}_sum {self.sum:.6f}")
        lines.append(f"{name}_count {self.count}")
        return lines
