"""Per-tenant connection limit of one hub node (docs/operations.md): a negotiate (or a WebSocket without
negotiate) past the limit answers 429 with a text naming the limit. The node-wide limit is
`HubOptions.max_connections` (negotiate error "The server has reached its connection limit.")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import HTTPConnection

from hub.signalr.endpoint import Unauthorized
from hub.signalr.manager import ConnectionManager

Authenticate = Callable[[HTTPConnection], Awaitable[Any]]


def tenant_limited(authenticate: Authenticate, manager: Callable[[], ConnectionManager], limit: int) -> Authenticate:
    """`authenticate`, then refuse when the principal's tenant already holds `limit` connections here (0: no limit)."""

    async def check(conn: HTTPConnection) -> Any:
        principal = await authenticate(conn)
        tenant = getattr(principal, "tenant_id", None)
        if limit > 0 and tenant is not None:
            held = sum(1 for c in manager().all_connections() if getattr(c.user, "tenant_id", None) == tenant)
            if held >= limit:
                raise Unauthorized(429, f"Tenant {tenant} has reached its limit of {limit} hub connections on this node.")
        return principal

    return check
