"""Recordings: signed URLs (HMAC-SHA256 over path and expiry, valid one hour) and the MP3 download with Range.

URL: `{base}/recordings/{conversationId}.mp3?expires={unix seconds}&sig={hex}` where
sig = HMAC-SHA256(secret, "{path}\\n{expires}") and path is `/recordings/{conversationId}.mp3`.
A tampered, expired or other file's signature answers 403; the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
from starlette.responses import Response, StreamingResponse

from hub.rest.auth_deps import require_conversation_access
from hub.rest.endpoint import Call, Endpoint
from hub.rest.problems import Problem, not_found
from hub.rest.responses import json_response
from hub.rest.services import RestServices
from hub.rest.validation import CONVERSATION_ID_PATTERN
from hub.store.timefmt import from_ms, iso

URL_TTL_SECONDS = 3600
CHUNK = 64 * 1024
MEDIA_TYPE = "audio/mpeg"


def recording_file_path(data_dir: Path, tenant_id: str, conversation_id: str) -> Path:
    """Where a recording is written by convention: {data_dir}/recordings/{tenant}/{conversationId}.mp3."""
    return Path(data_dir) / "recordings" / tenant_id / f"{conversation_id}.mp3"


def recording_path(conversation_id: str) -> str:
    return f"/recordings/{conversation_id}.mp3"


def sign(secret: bytes, path: str, expires: int) -> str:
    return hmac.new(secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()


def signed_url(services: RestServices, base_url: str, conversation_id: str, now: datetime) -> tuple[str, datetime]:
    expires = int(now.timestamp()) + URL_TTL_SECONDS
    path = recording_path(conversation_id)
    url = f"{base_url.rstrip('/')}{path}?expires={expires}&sig={sign(services.recording_secret, path, expires)}"
    return url, from_ms(expires * 1000)


def check_signature(secret: bytes, path: str, expires: str | None, sig: str | None, now: datetime) -> None:
    if not expires or not sig or not re.fullmatch(r"\d{1,12}", expires):
        raise Problem(403, "The recording URL is not signed.", slug="invalid-signature")
    expected = sign(secret, path, int(expires))
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise Problem(403, "The recording URL signature is not valid.", slug="invalid-signature")
    if now.timestamp() > int(expires):
        raise Problem(403, "The recording URL has expired; ask the API for a new one.", slug="expired-signature")


def resolve_file(services: RestServices, stored: str) -> Path | None:
    """The stored path of a recording, relative paths below data_dir; anything outside data_dir is refused."""
    root = services.data_dir.resolve()
    path = Path(stored)
    path = (path if path.is_absolute() else root / path).resolve()
    return path if path.is_relative_to(root) else None


async def _find_file(services: RestServices, tenant_id: str, conversation_id: str) -> tuple[Path, dict[str, Any]] | None:
    info = await services.store.get_recording_info(tenant_id, conversation_id)
    if info is None:
        return None
    path = resolve_file(services, str(info["path"]))
    if path is None or not await anyio.Path(path).is_file():
        return None
    return path, info


async def get_recording_url(call: Call) -> Response:
    conv_id = call.param("conversationId")
    require_conversation_access(call.principal, conv_id)
    tenant = call.principal.tenant_id
    if await call.services.store.get_conversation(tenant, conv_id) is None:
        raise not_found()
    found = await _find_file(call.services, tenant, conv_id)
    if found is None:
        raise not_found("recording for this conversation")
    _, info = found
    base = call.services.public_base_url or str(call.request.base_url)
    url, expires_at = signed_url(call.services, base, conv_id, call.services.clock())
    return json_response({"url": url, "format": "mp3", "durationSeconds": int(info["durationSeconds"]),
                          "expiresAt": iso(expires_at)})


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One `bytes=a-b` / `a-` / `-n` range as (start, end inclusive); None to send the whole file.

    A malformed or multi-part Range is ignored (RFC 9110 allows that); an unsatisfiable one is a 416.
    """
    if not header:
        return None
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.group(1), match.group(2)
    if first == "":
        length = int(last)
        if length == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - length), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> Problem:
    return Problem(416, f"The requested range is outside the recording ({size} bytes).",
                   headers={"Content-Range": f"bytes */{size}"})


async def _read(path: Path, start: int, end: int) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as f:
        await f.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = await f.read(min(CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            yield chunk


async def serve_recording(call: Call) -> Response:
    conv_id = call.param("conversationId")
    query = call.request.query_params
    check_signature(call.services.recording_secret, recording_path(conv_id), query.get("expires"), query.get("sig"),
                    call.services.clock())
    tenant = await call.services.store.tenant_of(conv_id) if CONVERSATION_ID_PATTERN.match(conv_id) else None
    found = None if tenant is None else await _find_file(call.services, tenant, conv_id)
    if found is None:
        raise not_found("recording")
    path = found[0]
    size = (await anyio.Path(path).stat()).st_size
    wanted = parse_range(call.request.headers.get("range"), size)
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600",
               "Content-Disposition": f'inline; filename="{conv_id}.mp3"'}
    start, end, status = (0, size - 1, 200) if wanted is None else (*wanted, 206)
    if status == 206:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1)
    if call.request.method == "HEAD" or size == 0:
        return Response(status_code=status, headers=headers, media_type=MEDIA_TYPE)
    return StreamingResponse(_read(path, start, end), status_code=status, headers=headers, media_type=MEDIA_TYPE)


def recording_endpoints() -> dict[str, dict[str, Endpoint]]:
    return {
        "/api/v1/conversations/{conversationId}/recording": {"GET": Endpoint(get_recording_url, scope="recordings:read")},
        "/recordings/{conversationId}.mp3": {"GET": Endpoint(serve_recording, auth="none", policy="recordings")},
    }

