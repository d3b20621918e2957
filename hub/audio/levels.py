"""RMS levels in dBFS.

0 dBFS is the RMS of a full-scale square wave (32768), so a full-scale sine reads -3.01 dBFS.
Silence (and anything quieter) reads DBFS_FLOOR.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import numpy.typing as npt

FULL_SCALE = 32768.0
#: Level reported for silence, an empty window or no audio at all.
DBFS_FLOOR = -100.0


def sum_of_squares(samples: npt.NDArray[np.int16]) -> float:
    as_float = samples.astype(np.float64)
    return float(np.dot(as_float, as_float))


def dbfs_from_energy(energy: float, count: int) -> float:
    if count <= 0 or energy <= 0.0:
        return DBFS_FLOOR
    level = 10.0 * math.log10(energy / count / (FULL_SCALE * FULL_SCALE))
    return max(level, DBFS_FLOOR)


def rms_dbfs(samples: npt.NDArray[np.int16]) -> float:
    return dbfs_from_energy(sum_of_squares(samples), int(samples.size))


class LevelMeter:
    """RMS over the frames that end within the last `window_ms` of a timeline."""

    def __init__(self, window_ms: int = 200) -> None:
        self.window_ms = window_ms
        self._frames: deque[tuple[int, float, int]] = deque()  # (end_ms, energy, samples)

    def add(self, samples: npt.NDArray[np.int16], end_ms: int) -> None:
        self._frames.append((end_ms, sum_of_squares(samples), int(samples.size)))
        self._trim(end_ms)

    def level(self, now_ms: int) -> float:
        self._trim(now_ms)
        energy = 0.0
        count = 0
        for end_ms, frame_energy, frame_count in self._frames:
            if end_ms <= now_ms:
                energy += frame_energy
                count += frame_count
        return dbfs_from_energy(energy, count)

    def _trim(self, now_ms: int) -> None:
        frames = self._frames
        while frames and frames[0][0] <= now_ms - self.window_ms:
            frames.popleft()
