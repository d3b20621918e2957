"""Known test signals for the audio tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def sine(freq: float, rate: int, seconds: float, amplitude: float = 16384.0, phase: float = 0.0) -> npt.NDArray[np.int16]:
    t = np.arange(int(rate * seconds)) / rate
    return np.rint(amplitude * np.sin(2 * np.pi * freq * t + phase)).astype(np.int16)


def peak_frequency(samples: npt.NDArray[np.int16], rate: int) -> float:
    windowed = samples.astype(np.float64) * np.hanning(samples.size)
    spectrum = np.abs(np.fft.rfft(windowed))
    return float(np.argmax(spectrum)) * rate / samples.size


def frames(samples: npt.NDArray[np.int16], size: int) -> list[npt.NDArray[np.int16]]:
    return [samples[i : i + size] for i in range(0, samples.size, size)]
