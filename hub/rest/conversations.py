"""The Conversations REST API of seed/voisnap-conversations-api.txt, scoped to the caller's tenant."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.responses import Response

from hub.rest.auth_deps import require_conversation_access, require_unrestricted
from hub.rest.endpoint import Call, Endpoint
from hub.rest.problems import Problem, invalid, not_found
from hub.rest.recordings import recording_file_path, resolve_file
from hub.rest.responses import json_response, no_content, page_envelope
from hub.rest.validation import (
    CONVERSATION_ID_PATTERN,
    check_fields,
    label,
    query_choice,
    query_date,
    query_int,
    query_value,
    read_json_object,
    string_field,
    string_list,
)
from hub.store.models import CHANNELS, DIRECTIONS, SORT_FIELDS, STATUSES, ConversationFilter

log = logging.getLogger("hub.rest")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_PAGE = 1_000_000
MAX_TAGS = 50  # per conversation, after merging
MAX_NOTES = 4000
DEFAULT_SORT = ("startedAt", "desc")


def conversation_id(call: Call) -> str:
    """The path's conversation id, after the token's conversation restriction; malformed ids are simply unknown."""
    conv_id = call.param("conversationId")
    require_conversation_access(call.principal, conv_id)
    if not CONVERSATION_ID_PATTERN.match(conv_id):
        raise not_found()
    return conv_id


def list_filter(call: Call) -> ConversationFilter:
    request = call.request
    tags: list[str] = []
    for text in request.query_params.getlist("tags"):
        tags += [label(t, "Tag") for t in text.split(",") if t.strip()]
    date_from = query_date(request, "dateFrom", end_of_day=False)
    date_to = query_date(request, "dateTo", end_of_day=True)
    if date_from is not None and date_to is not None and date_from > date_to:
        raise invalid("'dateFrom' is after 'dateTo'.")
    outcome = query_value(request, "outcome")
    agent_id = query_value(request, "agentId")
    return ConversationFilter(
        agent_id=agent_id or None,
        channel=query_choice(request, "channel", CHANNELS),
        status=query_choice(request, "status", STATUSES),
        direction=query_choice(request, "direction", DIRECTIONS),
        date_from=date_from,
        date_to=date_to,
        outcome=outcome or None,
        tags=tuple(dict.fromkeys(tags)),
        min_duration=query_int(request, "minDuration", default=None, lo=0, hi=10**9),
    )


async def list_conversations(call: Call) -> Response:
    require_unrestricted(call.principal)
    request = call.request
    filters = list_filter(call)
    page = query_int(request, "page", default=1, lo=1, hi=MAX_PAGE)
    page_size = query_int(request, "pageSize", default=DEFAULT_PAGE_SIZE, lo=1, hi=MAX_PAGE_SIZE)
    sort_by = query_choice(request, "sortBy", SORT_FIELDS, DEFAULT_SORT[0])
    sort_order = query_choice(request, "sortOrder", ("asc", "desc"), DEFAULT_SORT[1])
    assert page is not None and page_size is not None and sort_by is not None and sort_order is not None
    data, total = await call.services.store.list_conversations(call.principal.tenant_id, filters, page, page_size, sort_by,
                                                               sort_order)
    return json_response(page_envelope(data, page, page_size, total))


def _getter(
    fetch: Callable[[Call, str, str], Awaitable[dict[str, Any] | None]], what: str = "conversation"
) -> Callable[[Call], Awaitable[Response]]:
    async def handler(call: Call) -> Response:
        conv_id = conversation_id(call)
        found = await fetch(call, call.principal.tenant_id, conv_id)
        if found is None:
            if what != "conversation" and await call.services.store.get_conversation(call.principal.tenant_id, conv_id):
                raise not_found(f"{what} for this conversation yet")
            raise not_found()
        return json_response(found)

    return handler


get_conversation = _getter(lambda c, t, i: c.services.store.get_conversation(t, i))
get_messages = _getter(lambda c, t, i: c.services.store.get_messages(t, i))
get_costs = _getter(lambda c, t, i: c.services.store.get_costs(t, i))
get_transcript = _getter(lambda c, t, i: c.services.store.get_transcript(t, i))
get_analysis = _getter(lambda c, t, i: c.services.store.get_analysis(t, i), "analysis")


async def delete_conversation(call: Call) -> Response:
    """Irreversible: the broker history (on_delete hook) first, so a failure can be retried, then file and record."""
    conv_id = conversation_id(call)
    tenant = call.principal.tenant_id
    store = call.services.store
    if await store.get_conversation(tenant, conv_id) is None:
        raise not_found()
    if call.services.on_delete is not None:
        await call.services.on_delete(tenant, conv_id)
    info = await store.get_recording_info(tenant, conv_id)
    files = {recording_file_path(call.services.data_dir, tenant, conv_id)}
    stored = None if info is None else resolve_file(call.services, str(info["path"]))
    if stored is not None:
        files.add(stored)
    for path in files:
        await anyio.Path(path).unlink(missing_ok=True)
    if not await store.delete_conversation(tenant, conv_id):
        raise not_found()
    log.info("conversation %s of %s deleted by %s", conv_id, tenant, call.principal.subject)
    return no_content()


async def add_tags(call: Call) -> Response:
    conv_id = conversation_id(call)
    body = await read_json_object(call.request)
    check_fields(body, {"tags"}, {"tags"})
    tags = list(dict.fromkeys(label(t, "Tag") for t in string_list(body, "tags", min_items=1, max_items=MAX_TAGS)))
    tenant = call.principal.tenant_id
    current = await call.services.store.get_conversation(tenant, conv_id)
    if current is None:
        raise not_found()
    if len(set(current["tags"]) | set(tags)) > MAX_TAGS:
        raise invalid(f"A conversation holds at most {MAX_TAGS} tags.")
    updated = await call.services.store.add_tags(tenant, conv_id, tags)
    if updated is None:
        raise not_found()
    return json_response(updated)


async def set_outcome(call: Call) -> Response:
    conv_id = conversation_id(call)
    body = await read_json_object(call.request)
    check_fields(body, {"outcome", "notes"}, {"outcome"})
    outcome = label(string_field(body, "outcome", max_length=64) or "", "Outcome")
    notes = string_field(body, "notes", max_length=MAX_NOTES, nullable=True)
    try:
        updated = await call.services.store.update_conversation(call.principal.tenant_id, conv_id,
                                                                {"outcome": outcome, "notes": notes})
    except ValueError as exc:  # the store refused the patch
        raise Problem(400, str(exc)) from exc
    if updated is None:
        raise not_found()
    return json_response(updated)


def conversation_endpoints() -> dict[str, dict[str, Endpoint]]:
    read, write = "conversations:read", "conversations:write"
    base = "/api/v1/conversations"
    one = base + "/{conversationId}"
    return {
        base: {"GET": Endpoint(list_conversations, scope=read)},
        one: {"GET": Endpoint(get_conversation, scope=read),
              "DELETE": Endpoint(delete_conversation, scope="conversations:delete")},
        one + "/messages": {"GET": Endpoint(get_messages, scope=read)},
        one + "/costs": {"GET": Endpoint(get_costs, scope=read)},
        one + "/transcript": {"GET": Endpoint(get_transcript, scope=read)},
        one + "/analysis": {"GET": Endpoint(get_analysis, scope=read)},
        one + "/tags": {"POST": Endpoint(add_tags, scope=write)},
        one + "/outcome": {"PUT": Endpoint(set_outcome, scope=write)},
    }
