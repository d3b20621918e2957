"""Rational polyphase resampling between the hub's rates, one-shot or streaming.

A rate change from_rate -> to_rate is up L, filter, down M with L/M = to_rate/from_rate in lowest terms.
The anti-alias (and anti-image) filter is a Kaiser-windowed sinc at the upsampled rate: passband up to
0.8 of the lower Nyquist, stopband from the lower Nyquist on, STOPBAND_DB of attenuation. It is split into
L phases of K taps, designed once per ratio and shared read-only by every Resampler.

Only the output samples are computed: output n sits at upsampled position t = n * M, so it needs input
index t // L and phase t % L. Outputs n, n + L, n + 2L share a phase and step M inputs apart, so L
consecutive outputs are one row of a strided view of the input times a precomputed (span, L) matrix:
a whole 20 ms frame is a single matrix product.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from hub.audio.pcm import Int16Array

SUPPORTED_RATES = (8000, 16000, 24000, 48000)
STOPBAND_DB = 60.0
PASSBAND_EDGE = 0.8  # of the lower Nyquist frequency

Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class PolyphaseFilter:
    up: int
    down: int
    taps_per_phase: int
    phases: Float32Array  # shape (up, taps_per_phase), each row reversed for a dot with the input window
    delay_in_output_samples: float


def _check_rate(rate: int) -> None:
    if rate not in SUPPORTED_RATES:
        raise ValueError(f"unsupported sample rate {rate}; supported: {', '.join(map(str, SUPPORTED_RATES))}")


@cache
def polyphase_filter(from_rate: int, to_rate: int) -> PolyphaseFilter:
    _check_rate(from_rate)
    _check_rate(to_rate)
    common = math.gcd(from_rate, to_rate)
    up, down = to_rate // common, from_rate // common
    upsampled_rate = from_rate * up
    nyquist = min(from_rate, to_rate) / 2
    transition = (1.0 - PASSBAND_EDGE) * nyquist
    cutoff = (1.0 + PASSBAND_EDGE) / 2 * nyquist
    # Kaiser's estimates for the window length and shape at the wanted attenuation.
    length = math.ceil((STOPBAND_DB - 7.95) / (2.285 * 2 * math.pi * transition / upsampled_rate)) + 1
    taps_per_phase = math.ceil(length / up)
    length = taps_per_phase * up
    beta = 0.1102 * (STOPBAND_DB - 8.7)
    centre = (length - 1) / 2
    n = np.arange(length, dtype=np.float64) - centre
    prototype = np.sinc(2 * cutoff / upsampled_rate * n) * np.kaiser(length, beta)
    prototype *= up / prototype.sum()  # unity gain after inserting L - 1 zeros per input sample
    phases = prototype.reshape(taps_per_phase, up).T[:, ::-1].astype(np.float32)
    phases.flags.writeable = False
    return PolyphaseFilter(up, down, taps_per_phase, phases, centre / down)


@dataclass(frozen=True, slots=True)
class _BlockPlan:
    """L consecutive outputs as one row: inputs [base + j*M, base + j*M + span) times matrix (span, L)."""

    base: int
    span: int
    matrix: Float32Array


@cache
def _block_plan(from_rate: int, to_rate: int, offset: int) -> _BlockPlan:
    f = polyphase_filter(from_rate, to_rate)
    positions = [offset + r * f.down for r in range(f.up)]
    firsts = [p // f.up for p in positions]
    base = firsts[0]
    span = firsts[-1] - base + f.taps_per_phase
    matrix = np.zeros((span, f.up), dtype=np.float32)
    for r, (position, first) in enumerate(zip(positions, firsts, strict=True)):
        matrix[first - base : first - base + f.taps_per_phase, r] = f.phases[position % f.up]
    matrix.flags.writeable = False
    return _BlockPlan(base, span, matrix)


class Resampler:
    """Streaming resampler: feed frames in order to process(); filter state carries across calls."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._filter = polyphase_filter(from_rate, to_rate)
        self._history = np.zeros(self._filter.taps_per_phase - 1, dtype=np.float32)
        self._offset = 0  # upsampled position of the next output, relative to the next input sample (< M)

    @property
    def delay_seconds(self) -> float:
        return self._filter.delay_in_output_samples / self.to_rate

    def process(self, frame: npt.NDArray[np.int16]) -> Int16Array:
        if self.from_rate == self.to_rate:
            return frame
        f = self._filter
        up, down = f.up, f.down
        count = int(frame.size)
        end = count * up
        offset = self._offset
        outputs = -(-(end - offset) // down) if offset < end else 0
        buffer = np.concatenate((self._history, frame), dtype=np.float32)
        self._history = buffer[count:]
        self._offset = offset + outputs * down - end
        if outputs == 0:
            return np.zeros(0, dtype=np.int16)
        out = np.empty(outputs, dtype=np.float32)
        blocks = outputs // up
        if blocks:
            plan = _block_plan(self.from_rate, self.to_rate, offset)
            rows = np.ndarray((blocks, plan.span), np.float32, buffer, plan.base * 4, (down * 4, 4))
            np.matmul(np.ascontiguousarray(rows), plan.matrix, out=out[: blocks * up].reshape(blocks, up))
        for n in range(blocks * up, outputs):
            position = offset + n * down
            first = position // up
            out[n] = buffer[first : first + f.taps_per_phase] @ f.phases[position % up]
        np.rint(out, out=out)
        np.minimum(out, 32767, out=out)  # the ufuncs directly: np.clip's wrapper costs more than the work here
        np.maximum(out, -32768, out=out)
        return out.astype(np.int16)


def resample(samples: npt.NDArray[np.int16], from_rate: int, to_rate: int) -> Int16Array:
    """One-shot resampling: what a fresh Resampler outputs for the whole signal (delay included)."""
    return Resampler(from_rate, to_rate).process(samples)


def output_length(input_samples: int, from_rate: int, to_rate: int) -> int:
    """Output samples of a fresh Resampler for input_samples (stable per 20 ms frame at these rates)."""
    f = polyphase_filter(from_rate, to_rate)
    return -(-(input_samples * f.up) // f.down)
