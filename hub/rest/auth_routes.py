"""POST /api/v1/auth/token (alias /api/v1/auth/login): an API key buys a short-lived, possibly narrower JWT."""

from __future__ import annotations

from starlette.responses import Response

from hub.auth.authenticate import bearer_token
from hub.auth.keys import hash_key
from hub.auth.principal import Principal
from hub.rest.auth_deps import requested_scopes
from hub.rest.endpoint import Call, Endpoint
from hub.rest.problems import invalid
from hub.rest.responses import json_response
from hub.rest.validation import CONVERSATION_ID_PATTERN, check_fields, int_field, read_json_object, string_field
from hub.store.timefmt import parse_iso

TOKEN_FIELDS = {"scopes", "conversationId", "ttlSeconds"}


async def issue_token(call: Call) -> Response:
    key = call.principal  # an API key (auth="api_key")
    services = call.services
    body = await read_json_object(call.request, optional=True)
    check_fields(body, TOKEN_FIELDS)
    scopes = key.scopes if body.get("scopes") is None else requested_scopes(body, key)
    conversation = string_field(body, "conversationId", max_length=80, nullable=True)
    if conversation is not None and not CONVERSATION_ID_PATTERN.match(conversation):
        raise invalid("'conversationId' must look like conv_<letters and digits>.")
    ttl = services.default_token_ttl
    if body.get("ttlSeconds") is not None:
        ttl = int_field(body, "ttlSeconds", lo=1, hi=services.max_token_ttl)
    expires_at = await _key_expiry(call)
    if expires_at is not None:  # a token never outlives its key
        ttl = max(1, min(ttl, int(expires_at - services.clock().timestamp())))
    token = services.token_service.issue(Principal(key.subject, key.tenant_id, scopes, conversation, "jwt"), ttl)
    return json_response({"accessToken": token, "tokenType": "Bearer", "expiresIn": ttl},
                         headers={"Cache-Control": "no-store"})


async def _key_expiry(call: Call) -> float | None:
    """When the API key that authenticated this call expires (Unix seconds), or None."""
    key = bearer_token(call.request.headers.get("authorization"))
    record = await call.services.key_store.find_key_by_hash(hash_key(key))
    expires = None if record is None else record.get("expiresAt")
    return None if expires is None else parse_iso(expires).timestamp()


def auth_endpoints() -> dict[str, dict[str, Endpoint]]:
    endpoint = Endpoint(issue_token, auth="api_key", policy="auth")
    return {"/api/v1/auth/token": {"POST": endpoint}, "/api/v1/auth/login": {"POST": endpoint}}
