"""Printing and saving: the per-point table row, knees, ratios, the JSON results file."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.point import PointResult
from bench.procs import ROOT

HEADER = (f"{'server':<10} {'proto':<7} {'C':>4} {'S':>4} {'offered/s':>10} {'deliv/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'max ms':>7} {'loss %':>7} {'srv CPU%':>8} {'msg/core':>8} {'RSS MB':>7} {'cli CPU%':>8} {'all CPU%':>8}  verdict")


def _f(value: float, width: int, digits: int = 1) -> str:
    return f"{value:>{width}.{digits}f}" if not math.isnan(value) else f"{'-':>{width}}"


def row(r: PointResult) -> str:
    verdict = "ok" if r.ok else ("ERROR " + r.error[:60] if r.error else "over")
    return (f"{r.target:<10} {r.protocol:<7} {r.conversations:>4} {r.subscribers:>4} {r.offered:>10.0f} "
            f"{r.delivered:>9.0f} {_f(r.p50, 7)} {_f(r.p99, 7)} {_f(r.max, 7)} {r.loss * 100:>7.3f} "
            f"{r.server_cpu:>8.0f} {per_core(r):>8.0f} {r.server_rss_mb:>7.1f} {r.client_cpu:>8.0f} "
            f"{r.machine_cpu:>8.0f}  {verdict}")


def per_core(r: PointResult) -> float:
    """Delivered messages per second of server CPU: what one core would carry at this point's cost per message."""
    return r.delivered / (r.server_cpu / 100) if r.server_cpu > 0 else float("nan")


def efficiency(results: list[PointResult], target: str, protocol: str, subscribers: int) -> float:
    """Median messages per server-core second over the points this server carried without loss: the cost per
    message, which background load on the machine disturbs far less than latency."""
    values = sorted(per_core(r) for r in results if r.target == target and r.protocol == protocol
                    and r.subscribers == subscribers and not r.error and r.loss < 0.001 and r.server_cpu > 1)
    return values[len(values) // 2] if values else float("nan")


def knee(results: list[PointResult], target: str, protocol: str, subscribers: int) -> PointResult | None:
    """The largest offered load that passed (loss < 0.1 %, p99 < 100 ms) for this server, protocol and S."""
    passed = [r for r in results if r.target == target and r.protocol == protocol and r.subscribers == subscribers and r.ok]
    return max(passed, key=lambda r: r.offered, default=None)


def save(payload: dict[str, Any]) -> Path:
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    path = out / time.strftime("fanout-%Y%m%d-%H%M%S.json")

    def encode(value: Any) -> Any:
        if isinstance(value, PointResult):
            data = asdict(value)
            data["ok"] = value.ok
            return data
        if isinstance(value, float) and math.isnan(value):
            return None
        raise TypeError(type(value).__name__)

    path.write_text(json.dumps(payload, default=encode, indent=1))
    return path
