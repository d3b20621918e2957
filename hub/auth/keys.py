"""API keys `vsnp_live_<random>` / `vsnp_sb_<random>`, kept as SHA-256 hashes only.

A key record (JSON) is {id, name, tenantId, scopes, prefix, createdAt, expiresAt, keyHash}; `public_key()`
drops the hash, and nothing ever keeps the plaintext.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

from hub.auth.principal import ALL_SCOPES, DEFAULT_TENANT, AuthError, Principal
from hub.store.ids import new_id
from hub.store.timefmt import iso, parse_iso, utcnow

KEY_PATTERN = re.compile(r"^vsnp_(live|sb)_[A-Za-z0-9]{16,128}$")
TENANT_PATTERN = re.compile(r"^ten_[A-Za-z0-9_-]{1,64}$")
MAX_NAME_LENGTH = 100
_ALPHABET = string.ascii_letters + string.digits


def generate_key(environment: str = "live") -> str:
    if environment not in ("live", "sb"):
        raise ValueError("environment is live or sb")
    return f"vsnp_{environment}_" + "".join(secrets.choice(_ALPHABET) for _ in range(40))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(token: str) -> bool:
    return token.startswith("vsnp_")


def public_key(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "keyHash"}


class KeyStore(ABC):
    """Where API key records live, keyed by the SHA-256 of the key; `create_key` is shared, storage is not."""

    async def create_key(
        self,
        tenant_id: str,
        *,
        name: str,
        scopes: list[str],
        expires_at: datetime | None = None,
        environment: str = "live",
        key: str | None = None,
        key_id: str | None = None,
        created_at: datetime | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Create a key (or register `key`, e.g. the bootstrap key); returns the plaintext and the public record.

        Raises ValueError for a malformed tenant id, key or name, or an unknown scope.
        """
        plaintext, record = build_key_record(tenant_id, name=name, scopes=scopes, expires_at=expires_at,
                                             environment=environment, key=key, key_id=key_id, created_at=created_at)
        return plaintext, public_key(await self._put(record))

    @abstractmethod
    async def _put(self, record: dict[str, Any]) -> dict[str, Any]:
        """Store `record` unless a key with its hash exists; return the stored record (the earlier one if so)."""

    @abstractmethod
    async def find_key_by_hash(self, key_hash: str) -> dict[str, Any] | None: ...

    @abstractmethod
    async def list_keys(self, tenant_id: str) -> list[dict[str, Any]]: ...

    @abstractmethod
    async def revoke_key(self, tenant_id: str, key_id: str) -> bool: ...

    @abstractmethod
    async def has_keys(self) -> bool: ...


def build_key_record(
    tenant_id: str, *, name: str, scopes: list[str], expires_at: datetime | None, environment: str, key: str | None,
    key_id: str | None, created_at: datetime | None = None,
) -> tuple[str, dict[str, Any]]:
    plaintext = key or generate_key(environment)
    if not KEY_PATTERN.match(plaintext):
        raise ValueError("an API key looks like vsnp_live_<16+ letters or digits> or vsnp_sb_<...>")
    if not TENANT_PATTERN.match(tenant_id):
        raise ValueError(f"a tenant id looks like ten_<letters, digits, _ or ->, not {tenant_id!r}")
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a key name has 1 to {MAX_NAME_LENGTH} characters")
    unknown = set(scopes) - ALL_SCOPES
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    record = {
        "id": key_id or new_id("key"),
        "name": name,
        "tenantId": tenant_id,
        "scopes": sorted(set(scopes)),
        "prefix": plaintext[: plaintext.index("_", 5) + 5],
        "createdAt": iso(created_at or utcnow()),
        "expiresAt": iso(expires_at),
        "keyHash": hash_key(plaintext),
    }
    return plaintext, record


async def principal_for_key(key_store: KeyStore, key: str, now: datetime | None = None) -> Principal:
    digest = hash_key(key)
    record = await key_store.find_key_by_hash(digest)
    if record is None or not hmac.compare_digest(record["keyHash"], digest):
        raise AuthError("invalid_credentials", "The API key is not valid.")
    expires = record.get("expiresAt")
    if expires is not None and parse_iso(expires) <= (now or utcnow()):
        raise AuthError("expired_credentials", "The API key has expired.")
    return Principal(record["id"], record["tenantId"], frozenset(record["scopes"]), None, "api_key")


async def ensure_bootstrap_key(key_store: KeyStore, key: str) -> dict[str, Any]:
    """VOICEHUB_BOOTSTRAP_KEY: make sure `key` exists with every scope for ten_default, with no expiry.

    Idempotent, also across nodes sharing a Redis store: the record's id is derived from the key's hash, and
    a store keeps the first record registered for a hash. A record of that key with other scopes, another
    tenant or an expiry (an older configuration) is replaced. Returns the public record.
    """
    digest = hash_key(key)
    key_id = "key_bootstrap_" + digest[:16]
    existing = await key_store.find_key_by_hash(digest)
    if existing is not None:
        if (existing["tenantId"], frozenset(existing["scopes"]), existing.get("expiresAt")) == (DEFAULT_TENANT, ALL_SCOPES, None):
            return public_key(existing)
        await key_store.revoke_key(existing["tenantId"], existing["id"])
    _, record = await key_store.create_key(DEFAULT_TENANT, name="bootstrap", scopes=sorted(ALL_SCOPES), key=key, key_id=key_id)
    return record


async def create_development_key(key_store: KeyStore, tenant_id: str = DEFAULT_TENANT, name: str = "development") -> str:
    """A key with every scope for `tenant_id`. Returns the plaintext (it is kept nowhere)."""
    plaintext, _ = await key_store.create_key(tenant_id, name=name, scopes=sorted(ALL_SCOPES))
    return plaintext


async def ensure_development_key(key_store: KeyStore) -> str | None:
    """For `serve` with the embedded store: a development key when the store holds no key yet, else None."""
    if await key_store.has_keys():
        return None
    return await create_development_key(key_store)
