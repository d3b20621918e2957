"""PCM16 little-endian mono payloads: validation, zero-copy int16 views, bytes out."""

from __future__ import annotations

import base64
import binascii
import sys

import numpy as np
import numpy.typing as npt

#: Largest accepted audio payload ("any whole number of samples up to 32 KB", contract section 2).
MAX_PAYLOAD_BYTES = 32 * 1024
#: The error code the hub sends in an `Error` event for a payload it refuses.
AUDIO_INVALID = "audio_invalid"

Int16Array = npt.NDArray[np.int16]
PCM16 = np.dtype("<i2")
_NATIVE_LE = sys.byteorder == "little"


class AudioInvalid(ValueError):
    """An audio payload the hub refuses; `str(error)` is the text for the `Error` event."""

    code = AUDIO_INVALID


def validate_pcm16(data: bytes | bytearray | memoryview) -> None:
    size = len(data) if not isinstance(data, memoryview) else data.nbytes
    if size == 0:
        raise AudioInvalid("audio payload is empty")
    if size % 2:
        raise AudioInvalid(f"audio payload has {size} bytes; PCM16 needs an even number (2 bytes per sample)")
    if size > MAX_PAYLOAD_BYTES:
        raise AudioInvalid(f"audio payload has {size} bytes; at most {MAX_PAYLOAD_BYTES} are accepted")


def as_int16(data: bytes | bytearray | memoryview) -> Int16Array:
    """Validated read-only int16 view of a PCM16 LE payload (no copy on little-endian hosts)."""
    validate_pcm16(data)
    view = np.frombuffer(data, dtype=PCM16)
    if not _NATIVE_LE:  # pragma: no cover - big-endian hosts only
        view = view.astype(np.int16)
    return view


def to_bytes(samples: npt.NDArray[np.int16]) -> bytes:
    """PCM16 LE bytes of an int16 array (one copy, which bytes requires)."""
    if samples.dtype != PCM16:
        samples = samples.astype(PCM16)
    return samples.tobytes()


def payload_from_argument(value: object) -> bytes:
    """Audio bytes from a hub method argument: base64 text (JSON clients) or `bin` (MessagePack clients)."""
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, bytearray | memoryview):
        data = bytes(value)
    elif isinstance(value, str):
        if len(value) > (MAX_PAYLOAD_BYTES * 4) // 3 + 4:
            raise AudioInvalid(f"audio payload is longer than {MAX_PAYLOAD_BYTES} bytes")
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise AudioInvalid("audio payload is not valid base64") from exc
    else:
        raise AudioInvalid(f"audio payload must be base64 text or binary, not {type(value).__name__}")
    validate_pcm16(data)
    return data
