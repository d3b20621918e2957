from __future__ import annotations

import numpy as np

from hub.audio import mulaw
from hub.audio.levels import rms_dbfs
from tests.audio_signals import sine


def test_known_code_values() -> None:
    """G.711 mu-law reference values: 0 -> 0xFF, full scale -> 0x80/0x00, decode of the extremes is +-32124."""
    samples = np.array([0, 1, -1, 100, -100, 32767, -32768, 1000], dtype=np.int16)
    assert list(mulaw.encode(samples)) == [0xFF, 0xFF, 0x7F, 0xF2, 0x72, 0x80, 0x00, 0xCE]
    assert list(mulaw.decode(np.array([0xFF, 0x7F, 0x80, 0x00, 0xF2, 0xCE], dtype=np.uint8))) == [
        0, 0, 32124, -32124, 104, 988,
    ]


def test_round_trip_error_is_at_most_half_a_step_for_every_sample() -> None:
    """All 65536 values: |x - decode(encode(x))| <= (|x| + 132) / 32, plus the clip above 32635."""
    x = np.arange(-32768, 32768).astype(np.int16)
    error = np.abs(mulaw.decode(mulaw.encode(x)).astype(np.int32) - x)
    magnitude = np.abs(x.astype(np.int32))
    bound = (np.minimum(magnitude, mulaw.CLIP) + mulaw.BIAS) / 32 + np.maximum(0, magnitude - mulaw.CLIP)
    assert (error <= bound).all()
    assert error.max() <= 644


def test_decoding_every_code_and_re_encoding_is_stable() -> None:
    """encode(decode(c)) == c for every code except the duplicate zero (0x7F decodes to 0, which encodes as 0xFF)."""
    codes = np.arange(256, dtype=np.uint8)
    again = mulaw.encode(mulaw.decode(codes))
    assert [int(c) for c in codes[again != codes]] == [0x7F]


def test_sine_round_trip_keeps_level_and_snr() -> None:
    """A -9 dBFS sine survives mu-law with its level and an SNR above 35 dB."""
    tone = sine(1000, 8000, 1.0, amplitude=11600)
    data = mulaw.encode_bytes(tone)
    assert len(data) == tone.size
    back = mulaw.decode_bytes(data)
    noise = back.astype(np.int32) - tone
    assert abs(rms_dbfs(back) - rms_dbfs(tone)) < 0.1
    snr = 10 * np.log10(np.sum(tone.astype(np.float64) ** 2) / np.sum(noise.astype(np.float64) ** 2))
    assert snr > 35
