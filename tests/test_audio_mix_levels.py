from __future__ import annotations

import numpy as np
import pytest

from hub.audio.levels import DBFS_FLOOR, LevelMeter, rms_dbfs
from hub.audio.mix import KNEE, mix
from tests.audio_signals import sine


def test_dbfs_of_known_signals() -> None:
    """Full-scale sine -3.01 dBFS, half scale -9.03, full-scale square 0, silence and empty at the floor."""
    assert rms_dbfs(sine(1000, 16000, 1.0, amplitude=32767)) == pytest.approx(-3.01, abs=0.01)
    assert rms_dbfs(sine(1000, 16000, 1.0, amplitude=16384)) == pytest.approx(-9.03, abs=0.01)
    assert rms_dbfs(np.full(320, -32768, dtype=np.int16)) == pytest.approx(0.0, abs=1e-9)
    assert rms_dbfs(np.zeros(320, dtype=np.int16)) == DBFS_FLOOR == -100.0
    assert rms_dbfs(np.zeros(0, dtype=np.int16)) == DBFS_FLOOR
    assert rms_dbfs(np.ones(320, dtype=np.int16)) == pytest.approx(-90.31, abs=0.01)


def test_level_meter_covers_the_last_window_only() -> None:
    """LevelMeter reports frames ending within the last 200 ms and falls to the floor after them."""
    meter = LevelMeter(window_ms=200)
    loud = sine(1000, 16000, 0.02, amplitude=32767)
    for i in range(10):
        meter.add(loud, end_ms=20 * (i + 1))
    assert meter.level(200) == pytest.approx(-3.01, abs=0.05)
    meter.add(np.zeros(320, dtype=np.int16), end_ms=220)
    assert meter.level(220) < -3.3
    assert meter.level(1000) == DBFS_FLOOR


def test_quiet_mix_is_the_exact_sum() -> None:
    """Below the limiter knee the mix is the plain sample sum and nothing is reported."""
    a = sine(300, 16000, 0.1, amplitude=8000)
    b = sine(1100, 16000, 0.1, amplitude=8000)
    result = mix(a, b)
    assert np.array_equal(result.samples, a.astype(np.int32) + b)
    assert result.limited == result.overflowed == 0


def test_loud_mix_is_limited_and_reported() -> None:
    """Two full-scale tones are soft-limited: no wrap, stays within int16, counts reported, shape monotonic."""
    a = sine(440, 16000, 0.5, amplitude=30000)
    b = sine(440, 16000, 0.5, amplitude=30000)
    raw = a.astype(np.int32) + b
    result = mix(a, b)
    assert result.samples.dtype == np.int16
    assert result.limited == int(np.count_nonzero(np.abs(raw) > KNEE)) > 0
    assert result.overflowed == int(np.count_nonzero((raw > 32767) | (raw < -32768))) > 0
    assert np.array_equal(np.sign(result.samples), np.sign(raw))  # no wrap-around
    order = np.argsort(raw)
    assert (np.diff(result.samples[order].astype(np.int32)) >= 0).all()  # the limiter keeps sample order
    untouched = np.abs(raw) <= KNEE
    assert np.array_equal(result.samples[untouched], raw[untouched])


def test_mix_refuses_unaligned_tracks() -> None:
    """Tracks of different lengths raise ValueError instead of being silently truncated."""
    with pytest.raises(ValueError, match="align"):
        mix(np.zeros(320, dtype=np.int16), np.zeros(480, dtype=np.int16))
