"""JSON success responses (orjson; camelCase bodies are built by the handlers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, headers=dict(headers or {}), media_type="application/json")


def no_content() -> Response:
    return Response(status_code=204)


def page_envelope(data: list[dict[str, Any]], page: int, page_size: int, total: int) -> dict[str, Any]:
    return {"data": data, "page": page, "pageSize": page_size, "total": total, "totalPages": -(-total // page_size)}
