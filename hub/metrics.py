"""`GET /metrics` in the Prometheus text format (contract section 6)."""

from __future__ import annotations

from typing import Any


def _line(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    if labels:
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return f"{name}{{{inner}}} {value:g}"
    return f"{name} {value:g}"


def render_metrics(runtime: Any) -> str:
    lines: list[str] = []

    def family(name: str, kind: str, text: str) -> None:
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")

    endpoints = runtime.endpoints
    voice = runtime.voice_endpoint
    family("voicehub_connections", "gauge", "Open connections by hub mode and transport.")
    if voice is not None:
        modes: dict[tuple[str, str], int] = {}
        for connection in voice.manager.all_open():
            mode = "caller" if "agentid" in connection.query else "monitor"
            transport = connection.transport.value if connection.transport is not None else "none"
            modes[(mode, transport)] = modes.get((mode, transport), 0) + 1
        for (mode, transport), count in sorted(modes.items()):
            lines.append(_line("voicehub_connections", count, {"mode": mode, "transport": transport}))
    family("voicehub_pending_connections", "gauge", "Negotiated connections without a transport yet (reaped after the "
                                                    "disconnect timeout).")
    if voice is not None:
        lines.append(_line("voicehub_pending_connections",
                           len(list(voice.manager.all_connections())) - len(list(voice.manager.all_open()))))
    totals = {
        "voicehub_connections_total": ("counter", "Connections created since start.", "metrics_connections_total"),
        "voicehub_messages_in_total": ("counter", "Hub messages received.", "metrics_messages_in"),
        "voicehub_frames_out_total": ("counter", "Frames written to clients.", "metrics_frames_out"),
        "voicehub_dropped_audio_frames_total": ("counter", "Audio frames dropped for slow consumers.",
                                                "metrics_dropped_frames"),
        "voicehub_slow_consumers_closed_total": ("counter", "Connections closed for not reading.",
                                                 "metrics_slow_consumers"),
    }
    for name, (kind, text, attr) in totals.items():
        family(name, kind, text)
        lines.append(_line(name, sum(getattr(e.manager, attr, 0) for e in endpoints)))
    services = runtime.voice
    family("voicehub_conversation_feeds", "gauge", "Conversations this node follows on the broker.")
    lines.append(_line("voicehub_conversation_feeds", len(services.feeds.feeds)))
    family("voicehub_subscriptions", "gauge", "Monitor watches per conversation followed by this node.")
    for conversation_id, feed in sorted(services.feeds.feeds.items()):
        lines.append(_line("voicehub_subscriptions", len(feed.watches), {"conversation": conversation_id}))
    family("voicehub_caller_sessions", "gauge", "Caller sessions owned by this node.")
    lines.append(_line("voicehub_caller_sessions", len(services.sessions)))
    family("voicehub_fanout_latency_seconds", "histogram",
           "Seconds from an event's publication until this node queued it for every subscriber.")
    lines.extend(services.feeds.fanout_latency.render("voicehub_fanout_latency_seconds"))
    family("voicehub_broker_ready", "gauge", "1 when the broker is reachable and its listener is not deaf.")
    lines.append(_line("voicehub_broker_ready", 1 if getattr(runtime.broker, "ready", True) else 0))
    lag = getattr(runtime.broker, "lag_seconds", None)
    if isinstance(lag, int | float):
        family("voicehub_broker_lag_seconds", "gauge", "Heartbeat round trip through the broker.")
        lines.append(_line("voicehub_broker_lag_seconds", lag))
    return "\n".join(lines) + "\n"
