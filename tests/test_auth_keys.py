"""API keys on both key stores: hashed storage, lookup, expiry, revoke, bootstrap and development keys."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from hub.auth.authenticate import authenticate_api_key, authenticate_rest, bearer_token
from hub.auth.keys import (
    KeyStore,
    create_development_key,
    ensure_bootstrap_key,
    ensure_development_key,
    generate_key,
    hash_key,
    principal_for_key,
)
from hub.auth.principal import ALL_SCOPES, AuthError, Principal
from hub.auth.tokens import TokenService
from tests.rest_support import STORE_KINDS, T0, close_store, make_key_store, redis_url_for


@pytest.fixture(params=STORE_KINDS)
def url(request: pytest.FixtureRequest) -> str | None:
    return redis_url_for(request.param, request)


def run_keys(url: str | None, body: Callable[[KeyStore], Awaitable[None]]) -> None:
    async def main() -> None:
        store = make_key_store(url)
        try:
            await body(store)
        finally:
            await close_store(store)

    asyncio.run(main())


def test_keys_are_stored_hashed_and_found_by_their_hash(url: str | None) -> None:
    async def body(store: KeyStore) -> None:
        assert not await store.has_keys()
        plaintext, record = await store.create_key("ten_a", name="ci", scopes=["conversations:read", "conversations:read"])
        assert plaintext.startswith("vsnp_live_") and len(plaintext) == 50
        assert record["scopes"] == ["conversations:read"] and record["tenantId"] == "ten_a" and record["name"] == "ci"
        assert record["prefix"] == plaintext[:14] and "keyHash" not in record and plaintext not in str(record)
        stored = await store.find_key_by_hash(hash_key(plaintext))
        assert stored is not None and stored["keyHash"] == hash_key(plaintext) and plaintext not in str(stored)
        principal = await principal_for_key(store, plaintext)
        assert principal == Principal(record["id"], "ten_a", frozenset({"conversations:read"}), None, "api_key")
        sandbox, _ = await store.create_key("ten_a", name="sb", scopes=[], environment="sb")
        assert sandbox.startswith("vsnp_sb_") and await store.has_keys()
        assert [k["name"] for k in await store.list_keys("ten_a")] == ["ci", "sb"]
        assert await store.list_keys("ten_b") == []

    run_keys(url, body)


def test_bad_key_input_is_refused(url: str | None) -> None:
    async def body(store: KeyStore) -> None:
        for kwargs in ({"tenant_id": "ten_a", "scopes": ["root"]}, {"tenant_id": "tenant-a", "scopes": []},
                       {"tenant_id": "ten_a", "scopes": [], "name": ""}, {"tenant_id": "ten_a", "scopes": [], "key": "vsnp_live_short"}):
            with pytest.raises(ValueError):
                await store.create_key(**{"name": "n", **kwargs})  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            generate_key("prod")

    run_keys(url, body)


def test_unknown_expired_and_revoked_keys_are_refused(url: str | None) -> None:
    async def body(store: KeyStore) -> None:
        with pytest.raises(AuthError) as info:
            await principal_for_key(store, generate_key())
        assert info.value.status == 401
        plaintext, record = await store.create_key("ten_a", name="short", scopes=["keys:manage"], expires_at=T0)
        await principal_for_key(store, plaintext, now=T0 - timedelta(seconds=1))
        with pytest.raises(AuthError) as info:
            await principal_for_key(store, plaintext, now=T0)
        assert info.value.code == "expired_credentials"
        assert not await store.revoke_key("ten_b", record["id"])  # another tenant cannot revoke it
        assert await store.revoke_key("ten_a", record["id"])
        assert not await store.revoke_key("ten_a", record["id"])
        with pytest.raises(AuthError):
            await principal_for_key(store, plaintext, now=T0 - timedelta(seconds=1))
        assert await store.list_keys("ten_a") == []

    run_keys(url, body)


def test_bootstrap_key_is_idempotent_and_repaired(url: str | None) -> None:
    async def body(store: KeyStore) -> None:
        key = "vsnp_live_" + "B" * 32
        first = await ensure_bootstrap_key(store, key)
        again = await ensure_bootstrap_key(store, key)
        assert first == again and first["tenantId"] == "ten_default" and set(first["scopes"]) == ALL_SCOPES
        assert len(await store.list_keys("ten_default")) == 1
        assert (await principal_for_key(store, key)).scopes == ALL_SCOPES
        await store.revoke_key("ten_default", first["id"])  # an older configuration: the same key, fewer scopes
        await store.create_key("ten_other", name="old", scopes=["monitor:read"], key=key)
        repaired = await ensure_bootstrap_key(store, key)
        assert repaired["tenantId"] == "ten_default" and set(repaired["scopes"]) == ALL_SCOPES
        assert await store.list_keys("ten_other") == []
        with pytest.raises(ValueError):
            await ensure_bootstrap_key(store, "not-a-key")

    run_keys(url, body)


def test_development_key_only_for_an_empty_store(url: str | None) -> None:
    async def body(store: KeyStore) -> None:
        dev = await ensure_development_key(store)
        assert dev is not None and (await principal_for_key(store, dev)).scopes == ALL_SCOPES
        assert await ensure_development_key(store) is None
        other = await create_development_key(store, "ten_x", "dev x")
        assert (await principal_for_key(store, other)).tenant_id == "ten_x"

    run_keys(url, body)


def test_bearer_header_parsing_and_rest_authentication() -> None:
    async def main() -> None:
        store = make_key_store(None)
        tokens = TokenService("k" * 32)
        plaintext, _ = await store.create_key("ten_a", name="n", scopes=["conversations:read"])
        assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer  abc ") == "abc"
        for header in (None, "", "Basic abc", "Bearer", "Bearer "):
            with pytest.raises(AuthError):
                bearer_token(header)
        assert (await authenticate_rest(f"Bearer {plaintext}", key_store=store, token_service=tokens)).method == "api_key"
        jwt_token = tokens.issue(Principal("key_1", "ten_a", frozenset({"monitor:read"})), 60)
        assert (await authenticate_rest(f"Bearer {jwt_token}", key_store=store, token_service=tokens)).method == "jwt"
        with pytest.raises(AuthError):
            await authenticate_api_key(f"Bearer {jwt_token}", key_store=store)
        assert (await authenticate_api_key(f"Bearer {plaintext}", key_store=store)).tenant_id == "ten_a"

    asyncio.run(main())
