"""Reading request bodies and query strings strictly: every malformed or mistyped input is a 400 problem."""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from starlette.requests import Request

from hub.rest.problems import Problem, invalid
from hub.store.timefmt import parse_iso

MAX_BODY_BYTES = 64 * 1024
# Tags and outcomes: a word character first, then word characters, '.', ':' or '-'; no commas (the list filter
# splits on them) and no spaces.
LABEL_PATTERN = re.compile(r"^\w[\w.:-]{0,63}$")
CONVERSATION_ID_PATTERN = re.compile(r"^conv_[0-9A-Za-z]{1,64}$")


async def read_json_object(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The body as a JSON object. An empty body is `{}` when `optional`; anything but an object is refused."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise Problem(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    if not raw.strip():
        if optional:
            return {}
        raise Problem(400, "A JSON object body is required.")
    if media and media != "application/json" and not media.endswith("+json"):
        raise Problem(415, f"The body must be application/json, not {media}.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"The body is not valid JSON: {exc}.", slug="malformed-json") from exc
    if not isinstance(body, dict):
        raise invalid("The body must be a JSON object.")
    return body


def check_fields(body: dict[str, Any], allowed: AbstractSet[str], required: AbstractSet[str] = frozenset()) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid(f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}.")
    missing = sorted(required - set(body))
    if missing:
        raise invalid(f"Missing required field(s): {', '.join(missing)}.")


def string_field(body: dict[str, Any], name: str, *, max_length: int, nullable: bool = False) -> str | None:
    value = body.get(name)
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise invalid(f"'{name}' must be a string{' or null' if nullable else ''}.")
    if len(value) > max_length:
        raise invalid(f"'{name}' is longer than {max_length} characters.")
    return value


def string_list(body: dict[str, Any], name: str, *, min_items: int = 0, max_items: int = 100) -> list[str]:
    value = body.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"'{name}' must be an array of strings.")
    if not min_items <= len(value) <= max_items:
        raise invalid(f"'{name}' must hold {min_items} to {max_items} items.")
    return list(value)


def label(value: str, what: str) -> str:
    text = value.strip()
    if not LABEL_PATTERN.match(text):
        raise invalid(f"{what} {value!r} is not valid: 1 to 64 letters, digits, '_', '.', ':' or '-', starting with a letter "
                      "or digit.")
    return text


def int_field(body: dict[str, Any], name: str, *, lo: int, hi: int) -> int:
    value = body.get(name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema's integer: 502.0 is 502
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"'{name}' must be an integer.")
    if not lo <= value <= hi:
        raise invalid(f"'{name}' must be between {lo} and {hi}.")
    return value


# Query strings


def query_value(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise invalid(f"Query parameter '{name}' is given more than once.")
    return values[0] if values else None


def query_int(request: Request, name: str, *, default: int | None, lo: int, hi: int) -> int | None:
    text = query_value(request, name)
    if text is None or text == "":
        return default
    if not re.fullmatch(r"[+-]?\d{1,12}", text.strip()):
        raise invalid(f"Query parameter '{name}' must be an integer, not {text!r}.")
    value = int(text)
    if not lo <= value <= hi:
        raise invalid(f"Query parameter '{name}' must be between {lo} and {hi}, not {value}.")
    return value


def query_choice(
    request: Request, name: str, choices: frozenset[str] | tuple[str, ...], default: str | None = None
) -> str | None:
    text = query_value(request, name)
    if text is None or text == "":
        return default
    if text not in choices:
        raise invalid(f"Query parameter '{name}' must be one of {', '.join(sorted(choices))}, not {text!r}.")
    return text


def query_date(request: Request, name: str, *, end_of_day: bool) -> datetime | None:
    """An ISO 8601 date or timestamp. A date alone covers the whole UTC day: its start, or with `end_of_day` its end."""
    text = query_value(request, name)
    if text is None or text == "":
        return None
    # An unencoded '+' of a UTC offset arrives as a space: 2025-06-01T10:00:00 02:00 means +02:00.
    text = re.sub(r" (\d{2}(:?\d{2})?)$", r"+\1", text.strip())
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            start = datetime.combine(day, time(0), UTC)
            return start + timedelta(days=1, milliseconds=-1) if end_of_day else start
        if "T" not in text.upper() and " " not in text:
            raise ValueError(text)
        return parse_iso(text)
    except ValueError as exc:
        raise invalid(f"Query parameter '{name}' must be an ISO 8601 date (2025-06-01) or timestamp "
                      f"(2025-06-01T14:22:00Z), not {text!r}.") from exc
