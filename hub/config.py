"""Configuration of one hub process: flags and `VOICEHUB_*` environment variables (contract section 7)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field

log = logging.getLogger("hub")


def env(flag: str, default: str | None = None) -> str | None:
    return os.environ.get("VOICEHUB_" + flag.upper().replace("-", "_"), default)


@dataclass
class HubConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    redis_url: str | None = None
    prefix: str = "voicehub"
    agent: str = "echo"  # echo | none
    demo: int = 0
    conformance: bool = False
    jwt_secret: str = ""
    recording_secret: str = ""
    data_dir: str = "data"
    bootstrap_key: str | None = None
    drain_grace: float = 10.0
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the REST API and hubs (none: CORS closed)
    max_connections: int = 10_000  # hub connections on this node (negotiated or open)
    max_connections_per_tenant: int = 2_000  # hub connections of one tenant on this node
    max_subscriptions: int = 200  # conversations one monitor connection may watch
    max_subscriptions_per_tenant: int = 5_000  # conversation watches of one tenant's monitors on this node
    handshake_timeout: float = 15.0  # a transport that sends no SignalR handshake within this is closed
    disconnect_timeout: float = 15.0  # negotiated-but-never-connected and between-poll connections are reaped after this
    header_timeout: float = 10.0  # an HTTP request must complete its headers within this (slowloris)
    generated_secret: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if not self.jwt_secret:
            self.jwt_secret = secrets.token_urlsafe(32)
            self.generated_secret = True
        if not self.recording_secret:
            self.recording_secret = hmac.new(self.jwt_secret.encode(), b"voicehub recordings", hashlib.sha256).hexdigest()

    @classmethod
    def from_env(cls, **overrides: object) -> HubConfig:
        values: dict[str, object] = {
            "host": env("host", "127.0.0.1"),
            "port": int(env("port", "8000") or "8000"),
            "redis_url": env("redis-url"),
            "prefix": env("prefix", "voicehub"),
            "demo": int(env("demo", "0") or "0"),
            "jwt_secret": env("jwt-secret", ""),
            "recording_secret": env("recording-secret", ""),
            "data_dir": env("data-dir", "data"),
            "bootstrap_key": env("bootstrap-key"),
            "drain_grace": float(env("drain-grace", "10") or "10"),
            "cors_origins": tuple(o.strip() for o in (env("cors-origins", "") or "").split(",") if o.strip()),
            **{name: int(value) for name in ("max_connections", "max_connections_per_tenant", "max_subscriptions",
                                             "max_subscriptions_per_tenant") if (value := env(name))},
            **{name: float(value) for name in ("handshake_timeout", "disconnect_timeout", "header_timeout")
               if (value := env(name))},
        }
        agent = env("agent")
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "agent" not in overrides or overrides.get("agent") is None:
            values["agent"] = agent or ("none" if values.get("redis_url") else "echo")
        return cls(**values)  # type: ignore[arg-type]
