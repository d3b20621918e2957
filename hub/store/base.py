"""The ConversationStore interface: every method is scoped by tenant; another tenant's id is not found."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from hub.store.models import ConversationFilter


class ConversationExists(ValueError):
    """create_conversation was given an id that is already taken (ids are unique across tenants)."""


@runtime_checkable
class ConversationStore(Protocol):
    async def create_conversation(
        self,
        tenant_id: str,
        *,
        agent_id: str,
        channel: str = "webrtc",
        direction: str = "inbound",
        metadata: dict[str, Any] | None = None,
        caller: dict[str, Any] | None = None,
        conversation_id: str | None = None,
        started_at: datetime | None = None,
    ) -> dict[str, Any]: ...

    async def get_conversation(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None: ...

    async def update_conversation(self, tenant_id: str, conversation_id: str, patch: dict[str, Any]) -> dict[str, Any] | None: ...

    async def add_tags(self, tenant_id: str, conversation_id: str, tags: list[str]) -> dict[str, Any] | None: ...

    async def end_conversation(
        self, tenant_id: str, conversation_id: str, *, status: str, reason: str, ended_at: datetime | None = None
    ) -> dict[str, Any] | None: ...

    async def add_turn(self, tenant_id: str, conversation_id: str, turn: dict[str, Any]) -> None: ...

    async def get_transcript(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None: ...

    async def get_messages(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None: ...

    async def set_costs(self, tenant_id: str, conversation_id: str, costs: dict[str, Any]) -> None: ...

    async def get_costs(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None: ...

    async def set_analysis(self, tenant_id: str, conversation_id: str, analysis: dict[str, Any]) -> None: ...

    async def get_analysis(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None: ...

    async def set_recording(self, tenant_id: str, conversation_id: str, *, path: str, duration_seconds: float) -> None: ...

    async def get_recording_info(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None: ...

    async def tenant_of(self, conversation_id: str) -> str | None: ...

    async def list_conversations(
        self, tenant_id: str, filters: ConversationFilter, page: int, page_size: int, sort_by: str, sort_order: str
    ) -> tuple[list[dict[str, Any]], int]: ...

    async def delete_conversation(self, tenant_id: str, conversation_id: str) -> bool: ...
