"""`Authorization: Bearer <api key | jwt>` for the REST API."""

from __future__ import annotations

from datetime import datetime

from hub.auth.keys import KeyStore, looks_like_key, principal_for_key
from hub.auth.principal import AuthError, Principal
from hub.auth.tokens import TokenService


def bearer_token(header: str | None) -> str:
    if not header:
        raise AuthError("missing_credentials", "An Authorization: Bearer header with an API key or a token is required.")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError("invalid_credentials", "The Authorization header must be 'Bearer <credential>'.")
    return token


async def authenticate_rest(
    header: str | None, *, key_store: KeyStore, token_service: TokenService, now: datetime | None = None
) -> Principal:
    token = bearer_token(header)
    if looks_like_key(token):
        return await principal_for_key(key_store, token, now)
    return token_service.verify(token)


async def authenticate_api_key(header: str | None, *, key_store: KeyStore, now: datetime | None = None) -> Principal:
    token = bearer_token(header)
    if not looks_like_key(token):
        raise AuthError("invalid_credentials", "This endpoint needs an API key, not a token.")
    return await principal_for_key(key_store, token, now)
