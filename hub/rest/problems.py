"""RFC 7807 problem details, the one error shape of the REST API: {type, title, status, detail, traceId}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from hub.store.ids import new_id

PROBLEM_MEDIA_TYPE = "application/problem+json"
# The platform we are compatible with publishes its error types under this base (voisnap-public-docs.md 4.3).
ERROR_TYPE_BASE = "https://docs.voisnap.ai/errors/"

_KINDS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad Request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not Found"),
    405: ("method-not-allowed", "Method Not Allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload Too Large"),
    415: ("unsupported-media-type", "Unsupported Media Type"),
    416: ("range-not-satisfiable", "Range Not Satisfiable"),
    429: ("rate-limit-exceeded", "Rate Limit Exceeded"),
    500: ("internal-error", "Internal Server Error"),
}


class Problem(Exception):
    """Raised anywhere in a handler; the endpoint wrapper turns it into a problem+json response."""

    def __init__(self, status: int, detail: str, *, slug: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        default_slug, self.title = _KINDS.get(status, ("error", "Error"))
        self.status = status
        self.detail = detail
        self.slug = slug or default_slug
        self.headers = dict(headers or {})

    @property
    def type(self) -> str:
        return ERROR_TYPE_BASE + self.slug

    def body(self, trace_id: str) -> dict[str, Any]:
        return {"type": self.type, "title": self.title, "status": self.status, "detail": self.detail, "traceId": trace_id}


def new_trace_id() -> str:
    return new_id("trace")


def problem_response(problem: Problem, trace_id: str) -> Response:
    return Response(orjson.dumps(problem.body(trace_id)), status_code=problem.status, headers=problem.headers,
                    media_type=PROBLEM_MEDIA_TYPE)


def not_found(what: str = "conversation") -> Problem:
    return Problem(404, f"No {what} with that id exists in your tenant.")


def invalid(detail: str) -> Problem:
    return Problem(400, detail, slug="validation-error")
