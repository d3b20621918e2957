"""Mixing two tracks at the same rate without silent clipping.

The sum is formed in int32. Samples whose magnitude stays at or below KNEE pass unchanged; above it a
tanh soft limiter maps (KNEE, inf) smoothly onto (KNEE, 32767), with unit slope at the knee. The result
reports how many samples the limiter touched and how many would have clipped without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hub.audio.pcm import Int16Array

PEAK = 32767
#: Limiter threshold: about -2.5 dBFS peak.
KNEE = 24576
_HEADROOM = float(PEAK - KNEE)


@dataclass(frozen=True, slots=True)
class MixResult:
    samples: Int16Array
    limited: int  # samples the limiter changed (|sum| > KNEE)
    overflowed: int  # samples whose plain sum was outside int16 (would have clipped)


def mix(a: npt.NDArray[np.int16], b: npt.NDArray[np.int16]) -> MixResult:
    if a.shape != b.shape:
        raise ValueError(f"cannot mix tracks of {a.size} and {b.size} samples; align them first")
    total = np.add(a, b, dtype=np.int32)
    magnitude = np.abs(total)
    if magnitude.size == 0 or magnitude.max() <= KNEE:
        return MixResult(total.astype(np.int16), 0, 0)
    over = magnitude > KNEE
    limited = int(np.count_nonzero(over))
    loud = total[over]
    overflowed = int(np.count_nonzero((loud > PEAK) | (loud < -PEAK - 1)))
    excess = magnitude[over].astype(np.float64) - KNEE
    shaped = KNEE + _HEADROOM * np.tanh(excess / _HEADROOM)
    total[over] = np.copysign(np.rint(shaped), loud).astype(np.int32)
    return MixResult(total.astype(np.int16), limited, overflowed)
