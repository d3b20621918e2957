"""The ConversationStore interface, and the part of it both stores (memory, Redis) share.

Another tenant's id is never found: every method takes the tenant and answers None / False for an id of
another tenant, exactly as for an unknown id.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import datetime
from typing import Any

from hub.store import models as m
from hub.store.ids import new_id
from hub.store.timefmt import to_ms, utcnow


class ConversationExists(ValueError):
    """create_conversation was given an id that is already taken (ids are unique across tenants)."""


class ConversationStore(ABC):
    """Every method is scoped by tenant: another tenant's id is not found (None / False).

    A store supplies `_insert` (store a new record or raise ConversationExists), `_load` (one record of
    one tenant, or None) and `_mutate` (apply a change to one record atomically; a change that raises
    ValueError writes nothing). What only edits the record is written once here, over those three.
    """

    def __init__(self, now: Callable[[], datetime] = utcnow) -> None:
        self._now = now

    def _now_ms(self) -> int:
        return to_ms(self._now())

    def _render(self, record: m.Record) -> dict[str, Any]:
        return m.render_conversation(record, self._now_ms())

    @abstractmethod
    async def _insert(self, record: m.Record) -> None: ...

    @abstractmethod
    async def _load(self, tenant_id: str, conversation_id: str) -> m.Record | None: ...

    @abstractmethod
    async def _mutate(self, tenant_id: str, conversation_id: str, change: Callable[[m.Record], None]) -> m.Record | None: ...

    async def _mutate_rendered(
        self, tenant_id: str, conversation_id: str, change: Callable[[m.Record], None]
    ) -> dict[str, Any] | None:
        record = await self._mutate(tenant_id, conversation_id, change)
        return None if record is None else self._render(record)

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
    ) -> dict[str, Any]:
        started = started_at or self._now()
        conv_id = conversation_id or new_id("conv", to_ms(started))
        record = m.new_record(tenant_id, conv_id, agent_id=agent_id, channel=channel, direction=direction,
                              metadata=metadata, caller=caller, started_at=started)
        await self._insert(record)
        return self._render(record)

    async def get_conversation(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        record = await self._load(tenant_id, conversation_id)
        return None if record is None else self._render(record)

    async def update_conversation(self, tenant_id: str, conversation_id: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        now_ms = self._now_ms()
        return await self._mutate_rendered(tenant_id, conversation_id, lambda r: m.apply_patch(r, patch, now_ms))

    async def add_tags(self, tenant_id: str, conversation_id: str, tags: list[str]) -> dict[str, Any] | None:
        return await self._mutate_rendered(tenant_id, conversation_id, m.tag_merger(tags))

    async def end_conversation(
        self, tenant_id: str, conversation_id: str, *, status: str, reason: str, ended_at: datetime | None = None
    ) -> dict[str, Any] | None:
        change = m.ender(status, reason, to_ms(ended_at or self._now()))
        return await self._mutate_rendered(tenant_id, conversation_id, change)

    @abstractmethod
    async def _turns(self, tenant_id: str, conversation_id: str) -> list[dict[str, Any]]:
        """The stored final turns of a conversation that exists, in order."""

    @abstractmethod
    async def _load_doc(self, tenant_id: str, conversation_id: str, name: str) -> dict[str, Any] | None:
        """A side document (`costs`, `analysis`) of a conversation that exists."""

    @abstractmethod
    async def _store_doc(
        self, tenant_id: str, conversation_id: str, name: str, doc: dict[str, Any], change: Callable[[m.Record], None]
    ) -> None:
        """Keep a side document and apply `change` to the record, together; nothing if the record is missing."""

    async def get_transcript(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        record = await self._load(tenant_id, conversation_id)
        if record is None:
            return None
        return m.render_transcript(record, await self._turns(tenant_id, conversation_id), self._now_ms())

    async def get_messages(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        record = await self._load(tenant_id, conversation_id)
        if record is None:
            return None
        return m.render_messages(record, await self._turns(tenant_id, conversation_id))

    async def set_costs(self, tenant_id: str, conversation_id: str, costs: dict[str, Any]) -> None:
        summary = m.cost_summary(costs)
        await self._store_doc(tenant_id, conversation_id, "costs", costs, lambda r: r.update(cost=summary))

    async def get_costs(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        record = await self._load(tenant_id, conversation_id)
        if record is None:
            return None
        return m.render_costs(record, await self._load_doc(tenant_id, conversation_id, "costs"))

    async def set_analysis(self, tenant_id: str, conversation_id: str, analysis: dict[str, Any]) -> None:
        summary = m.analysis_summary(analysis)
        await self._store_doc(tenant_id, conversation_id, "analysis", analysis, lambda r: r.update(analysis=summary))

    async def get_analysis(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        record = await self._load(tenant_id, conversation_id)
        analysis = None if record is None else await self._load_doc(tenant_id, conversation_id, "analysis")
        return None if record is None or analysis is None else m.render_analysis(record, analysis)

    async def set_recording(self, tenant_id: str, conversation_id: str, *, path: str, duration_seconds: float) -> None:
        info = {"path": path, "durationSeconds": float(duration_seconds), "createdAtMs": self._now_ms()}
        await self._mutate(tenant_id, conversation_id, lambda r: r.update(recording=info))

    async def get_recording_info(self, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
        record = await self._load(tenant_id, conversation_id)
        return None if record is None or record["recording"] is None else dict(record["recording"])

    @abstractmethod
    async def add_turn(self, tenant_id: str, conversation_id: str, turn: dict[str, Any]) -> None: ...

    @abstractmethod
    async def tenant_of(self, conversation_id: str) -> str | None: ...

    @abstractmethod
    async def list_conversations(
        self, tenant_id: str, filters: m.ConversationFilter, page: int, page_size: int, sort_by: str, sort_order: str
    ) -> tuple[list[dict[str, Any]], int]: ...

    @abstractmethod
    async def delete_conversation(self, tenant_id: str, conversation_id: str) -> bool: ...
