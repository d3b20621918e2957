"""RestServices: everything the REST routes need, handed in by whoever builds the app."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from hub.auth.keys import KeyStore
from hub.auth.tokens import TokenService
from hub.rest.ratelimit import RateLimitSettings
from hub.store.base import ConversationStore
from hub.store.timefmt import utcnow

OnDelete = Callable[[str, str], Awaitable[None]]


@dataclass
class RestServices:
    store: ConversationStore
    key_store: KeyStore
    token_service: TokenService
    recording_secret: bytes  # HMAC key of signed recording URLs; the same on every node
    data_dir: Path  # recordings live below it (relative recording paths are resolved against it)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    on_delete: OnDelete | None = None  # awaited before a conversation is deleted, e.g. to drop broker history
    clock: Callable[[], datetime] = utcnow
    public_base_url: str | None = None  # e.g. https://hub.example.com; default: the request's own base URL
    default_token_ttl: int = 900
    max_token_ttl: int = 86_400

    def __post_init__(self) -> None:
        if isinstance(self.recording_secret, str):
            self.recording_secret = self.recording_secret.encode()
        if len(self.recording_secret) < 16:
            raise ValueError("recording_secret needs at least 16 bytes")
        self.data_dir = Path(self.data_dir)
