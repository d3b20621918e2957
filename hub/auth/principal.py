"""Who is calling: the result of authenticating an API key or a JWT (voicehub-contract.md section 1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ALL_SCOPES = frozenset({
    "conversations:read",
    "conversations:write",
    "conversations:delete",
    "recordings:read",
    "voice:session",
    "monitor:read",
    "monitor:listen",
    "monitor:control",
    "keys:manage",
})
DEFAULT_TENANT = "ten_default"


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant_id: str
    scopes: frozenset[str]
    conversation_id: str | None = None
    method: Literal["api_key", "jwt"] = "api_key"

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    def may_access(self, conversation_id: str) -> bool:
        return self.conversation_id is None or self.conversation_id == conversation_id


class AuthError(Exception):
    """A credential was refused. `code` is stable; `status` is 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, code: str, detail: str, status: int = 401) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status

    def __repr__(self) -> str:
        return f"AuthError(code={self.code!r}, detail={self.detail!r}, status={self.status})"
