"""JSON Schemas (OpenAPI 3.1 = JSON Schema 2020-12) of every REST body, as the code renders them."""

from __future__ import annotations

from typing import Any

from hub.auth.principal import ALL_SCOPES
from hub.rest.validation import LABEL_PATTERN
from hub.store.models import CHANNELS, DIRECTIONS, STATUSES

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
NULLABLE_STRING: Schema = {"type": ["string", "null"]}
NUMBER: Schema = {"type": "number"}
INTEGER: Schema = {"type": "integer"}
TIMESTAMP: Schema = {"type": "string", "format": "date-time", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$"}
NULLABLE_TIMESTAMP: Schema = {"anyOf": [TIMESTAMP, {"type": "null"}]}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], *, required: list[str] | None = None, extra: bool | Schema = False) -> Schema:
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required, "additionalProperties": extra}


def page_of(item: str) -> Schema:
    return obj({"data": {"type": "array", "items": ref(item)}, "page": {"type": "integer", "minimum": 1},
                "pageSize": {"type": "integer", "minimum": 1, "maximum": 100}, "total": {"type": "integer", "minimum": 0},
                "totalPages": {"type": "integer", "minimum": 0}})


LABEL: Schema = {"type": "string", "pattern": LABEL_PATTERN.pattern}
SCOPE: Schema = {"type": "string", "enum": sorted(ALL_SCOPES)}

COST_SUMMARY = obj({name: NUMBER for name in ("totalUsd", "llmUsd", "ttsUsd", "sttUsd", "telephonyUsd")})
ANALYSIS_SUMMARY = obj({"sentiment": NULLABLE_STRING, "sentimentScore": {"type": ["number", "null"]},
                        "intent": NULLABLE_STRING, "summary": NULLABLE_STRING, "customFields": {"type": "object"}})
RECORDING_SUMMARY = obj({"available": {"type": "boolean"}, "durationSeconds": {"type": ["integer", "null"]},
                         "format": {"const": "mp3"}, "expiresAt": NULLABLE_TIMESTAMP})
WORD = obj({"word": STRING, "startTime": NUMBER, "endTime": NUMBER, "confidence": {"type": ["number", "null"]}},
           required=["word", "startTime", "endTime"], extra=True)

SCHEMAS: dict[str, Schema] = {
    "Problem": {**obj({"type": {"type": "string", "format": "uri"}, "title": STRING, "status": INTEGER, "detail": STRING,
                       "traceId": {"type": "string", "pattern": "^trace_"}}),
                "description": "RFC 7807 problem details, media type application/problem+json."},
    "Conversation": obj({
        "id": {"type": "string", "pattern": "^conv_"},
        "agentId": STRING,
        "agentName": NULLABLE_STRING,
        "channel": {"type": "string", "enum": sorted(CHANNELS)},
        "status": {"type": "string", "enum": sorted(STATUSES)},
        "direction": {"type": "string", "enum": sorted(DIRECTIONS)},
        "startedAt": TIMESTAMP,
        "endedAt": NULLABLE_TIMESTAMP,
        "durationSeconds": {"type": "integer", "minimum": 0},
        "caller": obj({"phoneNumber": NULLABLE_STRING, "country": NULLABLE_STRING}, extra=True),
        "metadata": {"type": "object"},
        "cost": COST_SUMMARY,
        "analysis": {"anyOf": [ANALYSIS_SUMMARY, {"type": "null"}]},
        "recording": RECORDING_SUMMARY,
        "tags": {"type": "array", "items": STRING},
        "outcome": NULLABLE_STRING,
    }),
    "ConversationPage": page_of("Conversation"),
    "Messages": obj({"conversationId": STRING, "messages": {"type": "array", "items": obj({
        "id": {"type": "string", "pattern": "^msg_"}, "role": {"enum": ["user", "agent"]}, "content": STRING,
        "timestamp": TIMESTAMP, "durationMs": {"type": "integer", "minimum": 0}})}}),
    "Costs": obj({"conversationId": STRING, "currency": STRING, "total": NUMBER, "breakdown": {
        "type": "object", "additionalProperties": {"type": "object", "properties": {"cost": NUMBER, "provider": STRING}}}}),
    "RecordingLink": obj({"url": {"type": "string", "format": "uri"}, "format": {"const": "mp3"},
                          "durationSeconds": {"type": "integer", "minimum": 0}, "expiresAt": TIMESTAMP}),
    "Transcript": obj({"conversationId": STRING, "language": STRING, "durationSeconds": {"type": "integer", "minimum": 0},
                       "turns": {"type": "array", "items": obj({
                           "id": STRING, "speaker": {"enum": ["user", "agent"]}, "text": STRING, "startTime": NUMBER,
                           "endTime": NUMBER, "confidence": {"type": ["number", "null"]},
                           "words": {"type": "array", "items": WORD}})}}),
    "Analysis": obj({
        "conversationId": STRING, "completedAt": NULLABLE_STRING, "sentiment": NULLABLE_STRING,
        "sentimentScore": {"type": ["number", "null"]}, "sentimentBreakdown": {"type": ["object", "null"]},
        "intent": NULLABLE_STRING, "entities": {"type": ["array", "null"], "items": {"type": "object"}},
        "summary": NULLABLE_STRING, "topics": {"type": ["array", "null"], "items": STRING},
        "customFields": {"type": ["object", "null"]}, "callQualityScore": {"type": ["number", "null"]},
        "agentPerformanceNotes": NULLABLE_STRING,
    }, required=["conversationId"], extra=True),
    "TagsRequest": obj({"tags": {"type": "array", "items": LABEL, "minItems": 1, "maxItems": 50}}),
    "OutcomeRequest": obj({"outcome": LABEL, "notes": {"type": ["string", "null"], "maxLength": 4000}}, required=["outcome"]),
    "TokenRequest": obj({"scopes": {"type": ["array", "null"], "items": SCOPE},
                         "conversationId": {"type": ["string", "null"], "pattern": "^conv_[0-9A-Za-z]{1,64}$"},
                         "ttlSeconds": {"type": ["integer", "null"], "minimum": 1, "maximum": 86400}}, required=[]),
    "TokenResponse": obj({"accessToken": STRING, "tokenType": {"const": "Bearer"},
                          "expiresIn": {"type": "integer", "minimum": 1}}),
    "ApiKey": obj({"id": {"type": "string", "pattern": "^key_"}, "name": STRING,
                   "tenantId": {"type": "string", "pattern": "^ten_"},
                   "scopes": {"type": "array", "items": SCOPE}, "prefix": {"type": "string", "pattern": "^vsnp_(live|sb)_"},
                   "createdAt": TIMESTAMP, "expiresAt": NULLABLE_TIMESTAMP}),
    "ApiKeyPage": page_of("ApiKey"),
    "ApiKeyCreateRequest": obj({"name": {"type": "string", "minLength": 1, "maxLength": 100},
                                "scopes": {"type": "array", "items": SCOPE, "minItems": 1},
                                "expiresAt": {"type": ["string", "null"], "format": "date-time",
                                              "description": "ISO 8601, in the future"},
                                "environment": {"enum": ["live", "sb"], "default": "live"}}, required=["name", "scopes"]),
}
SCHEMAS["ApiKeyCreated"] = {
    **obj({**SCHEMAS["ApiKey"]["properties"], "key": {"type": "string", "pattern": "^vsnp_(live|sb)_[A-Za-z0-9]{16,128}$",
                                                     "description": "The secret. Shown once, never again."}}),
}
