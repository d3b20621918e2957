"""Who may call what: credentials to a Principal, then scope, tenant and conversation checks."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from hub.auth.authenticate import authenticate_api_key, authenticate_rest
from hub.auth.principal import ALL_SCOPES, AuthError, Principal
from hub.rest.problems import Problem, invalid
from hub.rest.services import RestServices
from hub.rest.validation import string_list


def _problem(error: AuthError) -> Problem:
    headers = {"WWW-Authenticate": 'Bearer realm="voicehub"'} if error.status == 401 else {}
    return Problem(error.status, error.detail, headers=headers)


async def authenticate(request: Request, services: RestServices, *, api_key_only: bool = False) -> Principal:
    """The caller of a REST request (API key or JWT; `api_key_only` refuses JWTs). 401 problem otherwise."""
    header = request.headers.get("authorization")
    now = services.clock()
    try:
        if api_key_only:
            return await authenticate_api_key(header, key_store=services.key_store, now=now)
        return await authenticate_rest(header, key_store=services.key_store, token_service=services.token_service, now=now)
    except AuthError as exc:
        raise _problem(exc) from exc


def require_scope(principal: Principal, scope: str) -> None:
    if not principal.has(scope):
        raise Problem(403, f"This credential lacks the scope '{scope}'.", slug="insufficient-scope")


def require_conversation_access(principal: Principal, conversation_id: str) -> None:
    """A token narrowed to one conversation (`conv` claim) reaches that conversation only."""
    if not principal.may_access(conversation_id):
        raise Problem(403, "This token is restricted to another conversation.", slug="conversation-restricted")


def require_unrestricted(principal: Principal) -> None:
    if principal.conversation_id is not None:
        raise Problem(403, "This token is restricted to one conversation and cannot use this endpoint.",
                      slug="conversation-restricted")


def requested_scopes(body: dict[str, Any], holder: Principal, *, min_items: int = 0) -> frozenset[str]:
    """The body's `scopes`: known scopes (else 400), all held by the caller (else 403: no escalation)."""
    wanted = frozenset(string_list(body, "scopes", min_items=min_items, max_items=len(ALL_SCOPES)))
    unknown = sorted(wanted - ALL_SCOPES)
    if unknown:
        raise invalid(f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(sorted(ALL_SCOPES))}.")
    beyond = sorted(wanted - holder.scopes)
    if beyond:
        raise Problem(403, f"The credential does not hold the scope(s) {', '.join(beyond)}, so it cannot grant them.",
                      slug="insufficient-scope")
    return wanted
