"""First checks of the conversation store and JWT tokens (the full REST/store suite is still to come)."""

from __future__ import annotations

import asyncio

import jwt
import pytest

from hub.auth.principal import AuthError, Principal
from hub.auth.tokens import TokenService
from hub.store.memory import MemoryConversationStore


def test_memory_store_keeps_tenants_apart() -> None:
    async def main() -> None:
        store = MemoryConversationStore()
        conv = await store.create_conversation("ten_a", agent_id="agt_1")
        assert conv["id"].startswith("conv_") and conv["status"] == "in_progress"
        assert (await store.get_conversation("ten_a", conv["id"]))["agentId"] == "agt_1"  # type: ignore[index]
        assert await store.get_conversation("ten_b", conv["id"]) is None

    asyncio.run(main())


def test_tokens_round_trip_and_refuse_alg_none_and_wrong_secret() -> None:
    service = TokenService("s" * 32)
    principal = Principal("usr_1", "ten_a", frozenset({"monitor:read"}), "conv_1", "jwt")
    back = service.verify(service.issue(principal, 60))
    assert (back.tenant_id, back.scopes, back.conversation_id) == ("ten_a", frozenset({"monitor:read"}), "conv_1")
    forged = jwt.encode({"sub": "x", "tid": "ten_a", "scp": "keys:manage", "exp": 2**40}, key="", algorithm="none")
    with pytest.raises(AuthError):
        service.verify(forged)
    with pytest.raises(AuthError):
        TokenService("t" * 32).verify(service.issue(principal, 60))
