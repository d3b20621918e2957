"""Connection and subscription limits per tenant and per node (issue 8, point 4), configured through VOICEHUB_* variables
on a real hub process, with clear errors: a tenant past its connections gets 429 naming the limit, the node past its
connections answers negotiate with "The server has reached its connection limit.", subscriptions past a connection's
or a tenant's limit are Completion errors naming it; freeing one lets the next in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import Redis

from hub.auth.keystore import RedisKeyStore
from hub.client.signalr import HubClient, HubError, NegotiateRefused
from hub.store.redis_store import RedisConversationStore
from tests.reliability_rig import HubProcess, token

ALL = ["monitor:read", "voice:session"]


@asynccontextmanager
async def _redis(url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(url)
    try:
        yield client
    finally:
        await client.aclose()


async def _connect(base: str, tok: str) -> HubClient:
    return await HubClient.connect(base + "/hubs/voice", token=tok)


def test_connection_limits_per_tenant_and_per_node(redis_url: str) -> None:
    async def main(hub: HubProcess) -> None:
        async with _redis(redis_url) as redis:
            other_key, _ = await RedisKeyStore(redis).create_key("ten_other", name="other", scopes=ALL)
        mine, theirs = await token(hub.base, ALL), await token(hub.base, ALL, key=other_key)
        clients = [await _connect(hub.base, mine) for _ in range(3)]
        try:
            with pytest.raises(NegotiateRefused) as refused:
                await _connect(hub.base, mine)
            assert refused.value.status == 429
            assert "Tenant ten_default has reached its limit of 3 hub connections on this node." in str(refused.value)
            clients += [await _connect(hub.base, theirs) for _ in range(2)]  # another tenant is not affected
            with pytest.raises(HubError, match="The server has reached its connection limit."):
                await _connect(hub.base, theirs)  # 5 on the node
            await clients.pop(0).close()

            async def reconnect() -> bool:
                try:
                    clients.append(await _connect(hub.base, mine))
                    return True
                except HubError:
                    return False

            for _ in range(50):  # the freed slot is usable once the server disposed the connection
                if await reconnect():
                    break
                await asyncio.sleep(0.1)
            assert len(clients) == 5
        finally:
            for client in clients:
                await client.close()

    env = {"VOICEHUB_MAX_CONNECTIONS": "5", "VOICEHUB_MAX_CONNECTIONS_PER_TENANT": "3"}
    with HubProcess(redis_url, env=env) as hub:
        asyncio.run(main(hub))


def test_subscription_limits_per_connection_and_per_tenant(redis_url: str) -> None:
    async def main(hub: HubProcess) -> None:
        async with _redis(redis_url) as redis:
            store = RedisConversationStore(redis)
            ids = [(await store.create_conversation("ten_default", agent_id="agt_x"))["id"] for _ in range(4)]
        tok = await token(hub.base, ALL)
        first, second = await _connect(hub.base, tok), await _connect(hub.base, tok)
        try:
            await first.invoke("Subscribe", ids[0])
            await first.invoke("Subscribe", ids[1])
            with pytest.raises(HubError, match="A connection may watch at most 2 conversations."):
                await first.invoke("Subscribe", ids[2])
            await second.invoke("Subscribe", ids[2])
            with pytest.raises(HubError, match="This tenant's monitors may watch at most 3 conversations on this node."):
                await second.invoke("Subscribe", ids[3])
            await first.invoke("Unsubscribe", ids[0])
            await second.invoke("Subscribe", ids[3])
            await first.close()  # its watch is given back when the connection ends
            third = await _connect(hub.base, tok)
            try:
                for _ in range(50):
                    try:
                        await third.invoke("Subscribe", ids[0])
                        break
                    except HubError:
                        await asyncio.sleep(0.1)
                else:
                    raise AssertionError("the closed connection's watch was not given back")
            finally:
                await third.close()
        finally:
            await first.close()
            await second.close()

    env = {"VOICEHUB_MAX_SUBSCRIPTIONS": "2", "VOICEHUB_MAX_SUBSCRIPTIONS_PER_TENANT": "3"}
    with HubProcess(redis_url, env=env) as hub:
        asyncio.run(main(hub))
