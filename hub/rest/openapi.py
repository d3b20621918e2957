"""GET /openapi.json: an OpenAPI 3.1 document of every REST endpoint, built from the schemas in code."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from hub.rest.conversations import DEFAULT_PAGE_SIZE, DEFAULT_SORT, MAX_PAGE_SIZE
from hub.rest.endpoint import Call, Endpoint
from hub.rest.openapi_schemas import SCHEMAS, Schema, ref
from hub.rest.problems import PROBLEM_MEDIA_TYPE
from hub.rest.responses import json_response
from hub.store.models import CHANNELS, DIRECTIONS, SORT_FIELDS, STATUSES

RATE_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed per window under the policy.",
    "X-RateLimit-Remaining": "Requests left now.",
    "X-RateLimit-Reset": "Unix seconds when the bucket is full again.",
    "X-RateLimit-Policy": "The policy name (api-read, api-write, auth, recordings, anonymous).",
}
ERROR_TEXT = {400: "Malformed or invalid input", 401: "Missing or invalid credential", 403: "Not allowed (scope, restriction)",
              404: "Not found in your tenant", 405: "Method not allowed", 413: "Body too large", 415: "Body is not JSON",
              416: "Range not satisfiable", 429: "Rate limit exceeded (see Retry-After)", 500: "Server failure"}
COMMON_ERRORS = (401, 403, 429, 500)


def _headers() -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in RATE_HEADERS}


def _json(status: int, description: str, schema: str | None) -> tuple[str, dict[str, Any]]:
    response: dict[str, Any] = {"description": description, "headers": _headers()}
    if schema is not None:
        media = PROBLEM_MEDIA_TYPE if schema == "Problem" else "application/json"
        response["content"] = {media: {"schema": ref(schema)}}
    return str(status), response


def _op(op_id: str, summary: str, ok: tuple[int, str, str | None], *, scope: str | None, errors: tuple[int, ...] = (),
        params: list[dict[str, Any]] | None = None, body: str | None = None, body_required: bool = True) -> dict[str, Any]:
    codes = sorted(set(errors) | set(COMMON_ERRORS if scope is not None else (429, 500)))
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "parameters": params or [],
                          "responses": dict([_json(*ok)] + [_json(c, ERROR_TEXT[c], "Problem") for c in codes])}
    if scope is not None:
        op["security"] = [{"bearer": []}]
        op["x-required-scope"] = scope
        op["description"] = f"Requires the scope `{scope}`."
    if body is not None:
        op["requestBody"] = {"required": body_required, "content": {"application/json": {"schema": ref(body)}}}
    return op


def _query(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


CONV_ID = {"name": "conversationId", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^conv_"}}
LIST_PARAMS = [
    _query("agentId", {"type": "string"}, "Filter by agent id"),
    _query("channel", {"enum": sorted(CHANNELS)}, "Filter by channel"),
    _query("status", {"enum": sorted(STATUSES)}, "Filter by status"),
    _query("direction", {"enum": sorted(DIRECTIONS)}, "Filter by direction"),
    _query("dateFrom", {"type": "string"}, "ISO 8601 date or timestamp, inclusive, on startedAt (a date: from 00:00:00Z)"),
    _query("dateTo", {"type": "string"}, "ISO 8601 date or timestamp, inclusive, on startedAt (a date: to 23:59:59.999Z)"),
    _query("outcome", {"type": "string"}, "Filter by outcome value"),
    _query("tags", {"type": "string"}, "Comma-separated; every listed tag must be present"),
    _query("minDuration", {"type": "integer", "minimum": 0}, "Minimum duration in seconds"),
    _query("page", {"type": "integer", "minimum": 1, "default": 1}, "Page number, from 1"),
    _query("pageSize", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE},
           "Items per page"),
    _query("sortBy", {"enum": list(SORT_FIELDS), "default": DEFAULT_SORT[0]}, "Sort field (ties by id)"),
    _query("sortOrder", {"enum": ["asc", "desc"], "default": DEFAULT_SORT[1]}, "Sort order"),
]
PAGE_PARAMS = LIST_PARAMS[9:11] + [LIST_PARAMS[12]]


def _paths() -> dict[str, Any]:
    read, write = "conversations:read", "conversations:write"
    one = "/api/v1/conversations/{conversationId}"

    def sub(op_id: str, summary: str, schema: str, scope: str = read) -> dict[str, Any]:
        return {"get": _op(op_id, summary, (200, summary, schema), scope=scope, errors=(404,), params=[CONV_ID])}

    key_id = {"name": "keyId", "in": "path", "required": True, "schema": {"type": "string"}}
    token = _op("createToken", "Exchange an API key for a JWT", (200, "The token", "TokenResponse"), scope="(an API key)",
                errors=(400, 413, 415), body="TokenRequest", body_required=False)
    del token["x-required-scope"]
    token["description"] = "Authenticated with an API key (not a JWT). The body narrows the token; scopes must be a subset."
    return {
        "/api/v1/conversations": {"get": _op("listConversations", "List conversations", (200, "One page", "ConversationPage"),
                                             scope=read, errors=(400,), params=LIST_PARAMS)},
        one: {"get": _op("getConversation", "Get a conversation", (200, "The conversation", "Conversation"), scope=read,
                         errors=(404,), params=[CONV_ID]),
              "delete": _op("deleteConversation",
                            "Delete: record, transcript, history, recording (irreversible)", (204, "Deleted", None),
                            scope="conversations:delete", errors=(404,), params=[CONV_ID])},
        one + "/messages": sub("getMessages", "Turn-by-turn messages", "Messages"),
        one + "/costs": sub("getCosts", "Cost breakdown", "Costs"),
        one + "/transcript": sub("getTranscript", "Transcript with word timing", "Transcript"),
        one + "/analysis": sub("getAnalysis", "AI analysis (404 until available)", "Analysis"),
        one + "/recording": sub("getRecording", "A signed MP3 URL, valid 1 hour (404 without a recording)", "RecordingLink",
                                "recordings:read"),
        one + "/tags": {"post": _op("addTags", "Add tags (merged, de-duplicated)",
                                    (200, "The updated conversation", "Conversation"), scope=write,
                                    errors=(400, 404, 413, 415), params=[CONV_ID], body="TagsRequest")},
        one + "/outcome": {"put": _op("setOutcome", "Set the outcome", (200, "The updated conversation", "Conversation"),
                                      scope=write, errors=(400, 404, 413, 415), params=[CONV_ID], body="OutcomeRequest")},
        "/api/v1/auth/token": {"post": token},
        "/api/v1/auth/login": {"post": {**token, "operationId": "login", "summary": "Alias of /api/v1/auth/token"}},
        "/api/v1/api-keys": {
            "post": _op("createApiKey", "Create an API key (the secret is in this answer only)",
                        (201, "Created", "ApiKeyCreated"), scope="keys:manage", errors=(400, 413, 415),
                        body="ApiKeyCreateRequest"),
            "get": _op("listApiKeys", "List API keys (never their secrets)", (200, "One page", "ApiKeyPage"), scope="keys:manage",
                       errors=(400,), params=PAGE_PARAMS)},
        "/api/v1/api-keys/{keyId}": {
            "get": _op("getApiKey", "Get an API key", (200, "The key", "ApiKey"), scope="keys:manage", errors=(404,),
                       params=[key_id]),
            "delete": _op("revokeApiKey", "Revoke an API key", (204, "Revoked", None), scope="keys:manage", errors=(404,),
                          params=[key_id])},
        "/recordings/{conversationId}.mp3": {"get": _recording_download()},
        "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "responses": {
            "200": {"description": "OpenAPI 3.1", "headers": _headers(),
                    "content": {"application/json": {"schema": {"type": "object", "required": ["openapi", "paths"]}}}},
            "429": _json(429, ERROR_TEXT[429], "Problem")[1]}}},
    }


def _recording_download() -> dict[str, Any]:
    audio = {"audio/mpeg": {"schema": {"type": "string", "contentMediaType": "audio/mpeg"}}}
    op = _op("downloadRecording", "The MP3 (signed URL from /recording; Range requests supported)", (200, "The file", None),
             scope=None, errors=(403, 404, 416), params=[
                 CONV_ID, {"name": "expires", "in": "query", "required": True, "schema": {"type": "integer"}},
                 {"name": "sig", "in": "query", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
                 {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"}}])
    op["responses"]["200"]["content"] = audio
    op["responses"]["206"] = {"description": "The requested byte range", "headers": _headers(), "content": audio}
    op["description"] = "sig = hex HMAC-SHA256(secret, path + '\\n' + expires). Tampered, expired or another file's: 403."
    return op


def build_openapi() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "VoiceHub REST API", "version": "1.0.0",
                 "description": "Conversations, API keys, tokens and recordings of VoiceHub (docs/rest-api.md)."},
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "headers": {name: {"description": text, "schema": {"type": "integer" if name != "X-RateLimit-Policy" else "string"}}
                        for name, text in RATE_HEADERS.items()},
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "An API key (vsnp_live_..., vsnp_sb_...) or a JWT from /api/v1/auth/token"}},
        },
    }


def openapi_endpoints() -> dict[str, dict[str, Endpoint]]:
    document = build_openapi()

    async def serve(call: Call) -> Response:
        return json_response(document)

    return {"/openapi.json": {"GET": Endpoint(serve, auth="none", policy="anonymous")}}
