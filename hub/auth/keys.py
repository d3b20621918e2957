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
from datetime import datetime
from typing import Any, Protocol

from hub.auth.principal import ALL_SCOPES, DEFAULT_TENANT, AuthError, Principal
from hub.store.ids import new_id
from hub.store.timefmt import iso, parse_iso, utcnow

KEY_PATTERN = re.compile(r"^vsnp_(live|sb)_[A-Za-z0-9]{16,128}$")
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


class KeyStore(Protocol):
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
    ) -> tuple[str, dict[str, Any]]: ...

    async def find_key_by_hash(self, key_hash: str) -> dict[str, Any] | None: ...

    async def list_keys(self, tenant_id: str) -> list[dict[str, Any]]: ...

    async def revoke_key(self, tenant_id: str, key_id: str) -> bool: ...

    async def has_keys(self) -> bool: ...


def build_key_record(
    tenant_id: str, *, name: str, scopes: list[str], expires_at: datetime | None, environment: str, key: str | None,
    key_id: str | None,
) -> tuple[str, dict[str, Any]]:
    plaintext = key or generate_key(environment)
    if not KEY_PATTERN.match(plaintext):
        raise ValueError("an API key looks like vsnp_live_<16+ letters or digits> or vsnp_sb_<...>")
    unknown = set(scopes) - ALL_SCOPES
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    record = {
        "id": key_id or new_id("key"),
        "name": name,
        "tenantId": tenant_id,
        "scopes": sorted(set(scopes)),
        "prefix": plaintext[: plaintext.index("_", 5) + 5],
        "createdAt": iso(utcnow()),
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
    """VOICEHUB_BOOTSTRAP_KEY: make sure `key` exists with every scope for ten_default (idempotent)."""
    digest = hash_key(key)
    existing = await key_store.find_key_by_hash(digest)
    if existing is not None:
        return public_key(existing)
    _, record = await key_store.create_key(
        DEFAULT_TENANT, name="bootstrap", scopes=sorted(ALL_SCOPES), key=key, key_id="key_bootstrap_" + digest[:16]
    )
    return record


async def create_development_key(key_store: KeyStore, tenant_id: str = DEFAULT_TENANT, name: str = "development") -> str:
    """A key with every scope, for `serve` to print when the store holds no key yet. Returns the plaintext."""
    plaintext, _ = await key_store.create_key(tenant_id, name=name, scopes=sorted(ALL_SCOPES))
    return plaintext
