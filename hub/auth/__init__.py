"""Auth: API keys (stored hashed), short-lived HS256 JWTs, and the Principal they both yield."""

from __future__ import annotations

from hub.auth.authenticate import authenticate_api_key, authenticate_rest, bearer_token
from hub.auth.keys import (
    KeyStore,
    create_development_key,
    ensure_bootstrap_key,
    ensure_development_key,
    generate_key,
    hash_key,
    principal_for_key,
    public_key,
)
from hub.auth.keystore import MemoryKeyStore, RedisKeyStore
from hub.auth.principal import ALL_SCOPES, DEFAULT_TENANT, AuthError, Principal
from hub.auth.tokens import TokenService

__all__ = [
    "ALL_SCOPES",
    "DEFAULT_TENANT",
    "AuthError",
    "KeyStore",
    "MemoryKeyStore",
    "Principal",
    "RedisKeyStore",
    "TokenService",
    "authenticate_api_key",
    "authenticate_rest",
    "bearer_token",
    "create_development_key",
    "ensure_bootstrap_key",
    "ensure_development_key",
    "generate_key",
    "hash_key",
    "principal_for_key",
    "public_key",
]
