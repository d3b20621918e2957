"""/api/v1/api-keys: create (the secret is shown once), list, get, revoke. Scope keys:manage."""

from __future__ import annotations

from starlette.responses import Response

from hub.rest.auth_deps import requested_scopes, require_unrestricted
from hub.rest.endpoint import Call, Endpoint
from hub.rest.problems import invalid, not_found
from hub.rest.responses import json_response, no_content, page_envelope
from hub.rest.validation import check_fields, query_choice, query_int, read_json_object, string_field
from hub.store.timefmt import parse_iso

KEY_FIELDS = {"name", "scopes", "expiresAt", "environment"}


async def create_key(call: Call) -> Response:
    principal = call.principal
    require_unrestricted(principal)
    body = await read_json_object(call.request)
    check_fields(body, KEY_FIELDS, {"name", "scopes"})
    name = (string_field(body, "name", max_length=100) or "").strip()
    if not name:
        raise invalid("'name' must not be empty.")
    scopes = requested_scopes(body, principal, min_items=1)
    expires_text = string_field(body, "expiresAt", max_length=40, nullable=True)
    expires_at = None
    if expires_text is not None:
        try:
            expires_at = parse_iso(expires_text)
        except ValueError as exc:
            raise invalid("'expiresAt' must be an ISO 8601 timestamp such as 2026-12-31T23:59:59Z.") from exc
        if expires_at <= call.services.clock():
            raise invalid("'expiresAt' is in the past.")
    environment = body.get("environment", "live")
    if environment not in ("live", "sb"):
        raise invalid("'environment' must be live or sb.")
    plaintext, record = await call.services.key_store.create_key(
        principal.tenant_id, name=name, scopes=sorted(scopes), expires_at=expires_at, environment=environment,
        created_at=call.services.clock(),
    )
    return json_response({**record, "key": plaintext}, status=201,
                         headers={"Location": f"/api/v1/api-keys/{record['id']}", "Cache-Control": "no-store"})


async def list_keys(call: Call) -> Response:
    require_unrestricted(call.principal)
    page = query_int(call.request, "page", default=1, lo=1, hi=1_000_000)
    page_size = query_int(call.request, "pageSize", default=20, lo=1, hi=100)
    order = query_choice(call.request, "sortOrder", ("asc", "desc"), "desc")
    assert page is not None and page_size is not None
    keys = await call.services.key_store.list_keys(call.principal.tenant_id)
    if order == "desc":
        keys.reverse()
    start = (page - 1) * page_size
    return json_response(page_envelope(keys[start:start + page_size], page, page_size, len(keys)))


async def _find(call: Call) -> dict[str, object]:
    key_id = call.param("keyId")
    for record in await call.services.key_store.list_keys(call.principal.tenant_id):
        if record["id"] == key_id:
            return record
    raise not_found("API key")


async def get_key(call: Call) -> Response:
    require_unrestricted(call.principal)
    return json_response(await _find(call))


async def revoke_key(call: Call) -> Response:
    require_unrestricted(call.principal)
    if not await call.services.key_store.revoke_key(call.principal.tenant_id, call.param("keyId")):
        raise not_found("API key")
    return no_content()


def key_endpoints() -> dict[str, dict[str, Endpoint]]:
    scope = "keys:manage"
    return {
        "/api/v1/api-keys": {"POST": Endpoint(create_key, scope=scope), "GET": Endpoint(list_keys, scope=scope)},
        "/api/v1/api-keys/{keyId}": {"GET": Endpoint(get_key, scope=scope), "DELETE": Endpoint(revoke_key, scope=scope)},
    }
