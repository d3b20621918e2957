from __future__ import annotations

import base64

import numpy as np
import pytest

from hub.audio.pcm import MAX_PAYLOAD_BYTES, AudioInvalid, as_int16, payload_from_argument, to_bytes, validate_pcm16


def test_int16_view_shares_the_payload_memory() -> None:
    """as_int16 is a read-only little-endian view of the bytes, not a copy; to_bytes round-trips."""
    payload = np.array([1, -2, 32767, -32768], dtype="<i2").tobytes()
    view = as_int16(payload)
    assert list(view) == [1, -2, 32767, -32768]
    assert not view.flags.writeable and not view.flags.owndata
    assert np.shares_memory(view, np.frombuffer(payload, dtype=np.uint8))
    assert to_bytes(view) == payload


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "audio payload is empty"),
        (b"\x00\x01\x02", "audio payload has 3 bytes; PCM16 needs an even number"),
        (bytes(MAX_PAYLOAD_BYTES + 2), "at most 32768 are accepted"),
    ],
)
def test_invalid_payloads_are_refused_with_audio_invalid(payload: bytes, message: str) -> None:
    """Empty, odd-length and oversized payloads raise AudioInvalid (code audio_invalid) with a clear text."""
    with pytest.raises(AudioInvalid, match=message) as info:
        validate_pcm16(payload)
    assert info.value.code == "audio_invalid"


def test_any_whole_number_of_samples_up_to_32_kb_is_accepted() -> None:
    """One sample, an odd number of samples and exactly 32 KB are all valid."""
    for size in (2, 642, MAX_PAYLOAD_BYTES):
        assert as_int16(bytes(size)).size == size // 2


def test_payload_from_argument_accepts_base64_and_binary() -> None:
    """JSON clients send base64 text, MessagePack clients bin; junk is audio_invalid."""
    pcm = bytes(range(64))
    assert payload_from_argument(base64.b64encode(pcm).decode()) == pcm
    assert payload_from_argument(pcm) is pcm
    assert payload_from_argument(bytearray(pcm)) == pcm
    with pytest.raises(AudioInvalid, match="not valid base64"):
        payload_from_argument("not base64!")
    with pytest.raises(AudioInvalid, match="not int"):
        payload_from_argument(12)
    with pytest.raises(AudioInvalid, match="odd|even"):
        payload_from_argument(base64.b64encode(b"abc").decode())
