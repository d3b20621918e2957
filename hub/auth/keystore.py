"""KeyStore implementations: in-process, and Redis (`<prefix>:auth:keyhash:{sha256}` JSON + per-tenant index)."""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis

from hub.auth.keys import KeyStore, public_key


class MemoryKeyStore(KeyStore):
    def __init__(self) -> None:
        self._by_hash: dict[str, dict[str, Any]] = {}

    async def _put(self, record: dict[str, Any]) -> dict[str, Any]:
        return dict(self._by_hash.setdefault(record["keyHash"], dict(record)))

    async def find_key_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        record = self._by_hash.get(key_hash)
        return None if record is None else dict(record)

    async def list_keys(self, tenant_id: str) -> list[dict[str, Any]]:
        found = [public_key(r) for r in self._by_hash.values() if r["tenantId"] == tenant_id]
        return sorted(found, key=lambda r: (r["createdAt"], r["id"]))

    async def revoke_key(self, tenant_id: str, key_id: str) -> bool:
        for digest, record in list(self._by_hash.items()):
            if record["tenantId"] == tenant_id and record["id"] == key_id:
                del self._by_hash[digest]
                return True
        return False

    async def has_keys(self) -> bool:
        return bool(self._by_hash)


class RedisKeyStore(KeyStore):
    def __init__(self, redis: Redis, *, prefix: str = "voicehub") -> None:
        self._redis = redis
        self._p = f"{prefix}:auth"

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "voicehub") -> RedisKeyStore:
        return cls(Redis.from_url(url), prefix=prefix)

    async def aclose(self) -> None:
        await self._redis.aclose()

    def _hash_key(self, digest: str) -> str:
        return f"{self._p}:keyhash:{digest}"

    def _tenant_key(self, tenant_id: str) -> str:
        return f"{self._p}:t:{tenant_id}:keys"

    async def _put(self, record: dict[str, Any]) -> dict[str, Any]:
        digest = record["keyHash"]
        if await self._redis.set(self._hash_key(digest), orjson.dumps(record), nx=True):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._tenant_key(record["tenantId"]), record["id"], digest)
                pipe.sadd(f"{self._p}:keys", digest)
                await pipe.execute()
            return record
        return await self.find_key_by_hash(digest) or record  # the same plaintext was registered before (bootstrap)

    async def find_key_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._hash_key(key_hash))
        return None if raw is None else dict(orjson.loads(raw))

    async def list_keys(self, tenant_id: str) -> list[dict[str, Any]]:
        digests = await self._redis.hvals(self._tenant_key(tenant_id))
        if not digests:
            return []
        raws = await self._redis.mget([self._hash_key(d.decode() if isinstance(d, bytes) else d) for d in digests])
        found = [public_key(orjson.loads(r)) for r in raws if r is not None]
        return sorted(found, key=lambda r: (r["createdAt"], r["id"]))

    async def revoke_key(self, tenant_id: str, key_id: str) -> bool:
        digest = await self._redis.hget(self._tenant_key(tenant_id), key_id)
        if digest is None:
            return False
        text = digest.decode() if isinstance(digest, bytes) else str(digest)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._hash_key(text))
            pipe.hdel(self._tenant_key(tenant_id), key_id)
            pipe.srem(f"{self._p}:keys", text)
            await pipe.execute()
        return True

    async def has_keys(self) -> bool:
        return bool(await self._redis.scard(f"{self._p}:keys"))
