from __future__ import annotations

import itertools

import numpy as np
import pytest

from hub.audio.levels import rms_dbfs
from hub.audio.resample import SUPPORTED_RATES, Resampler, output_length, resample
from tests.audio_signals import frames, peak_frequency, sine

RATIOS = [(a, b) for a, b in itertools.permutations(SUPPORTED_RATES, 2)]
SETTLE = 0.05  # seconds skipped at the start of outputs: the filter's start-up transient


@pytest.mark.parametrize(("from_rate", "to_rate"), RATIOS)
def test_sine_keeps_frequency_and_level(from_rate: int, to_rate: int) -> None:
    """A 1 kHz sine keeps its FFT peak and its RMS level (within 0.5 dB) for every ratio."""
    tone = sine(1000, from_rate, 1.0)
    out = resample(tone, from_rate, to_rate)
    steady = out[int(SETTLE * to_rate) :]
    assert abs(peak_frequency(steady, to_rate) - 1000) <= 2
    assert abs(rms_dbfs(steady) - rms_dbfs(tone)) < 0.5


@pytest.mark.parametrize(("from_rate", "to_rate"), RATIOS)
def test_streaming_equals_one_shot(from_rate: int, to_rate: int) -> None:
    """20 ms frames and irregular chunks give the one-shot output (within 1 LSB), with stable frame lengths."""
    signal = sine(440, from_rate, 0.5) // 2 + sine(2900, from_rate, 0.5) // 3
    one_shot = resample(signal, from_rate, to_rate)
    resampler = Resampler(from_rate, to_rate)
    outs = [resampler.process(frame) for frame in frames(signal, from_rate // 50)]
    assert {out.size for out in outs} == {to_rate // 50}
    assert np.abs(np.concatenate(outs).astype(np.int32) - one_shot).max() <= 1

    cuts = np.sort(np.random.default_rng(7).integers(0, signal.size, 40))
    chunked = Resampler(from_rate, to_rate)
    pieces = np.concatenate([chunked.process(piece) for piece in np.split(signal, cuts)])
    assert pieces.size == one_shot.size == output_length(signal.size, from_rate, to_rate)
    assert np.abs(pieces.astype(np.int32) - one_shot).max() <= 1


@pytest.mark.parametrize(("from_rate", "to_rate"), RATIOS)
def test_no_discontinuity_at_frame_boundaries(from_rate: int, to_rate: int) -> None:
    """The sample-to-sample step at frame boundaries stays within the sine's largest slope."""
    freq, amplitude = 1000.0, 16384.0
    resampler = Resampler(from_rate, to_rate)
    out = np.concatenate([resampler.process(f) for f in frames(sine(freq, from_rate, 0.4, amplitude), from_rate // 50)])
    steps = np.abs(np.diff(out[int(SETTLE * to_rate) :].astype(np.int32)))
    max_step = 2 * np.pi * freq * amplitude / to_rate * 1.02 + 2
    assert steps.max() <= max_step
    boundaries = np.arange(to_rate // 50, out.size, to_rate // 50) - 1
    boundaries = boundaries[boundaries >= int(SETTLE * to_rate)]
    assert np.abs(out[boundaries + 1].astype(np.int32) - out[boundaries]).max() <= max_step


@pytest.mark.parametrize(("from_rate", "to_rate"), [(a, b) for a, b in RATIOS if b < a])
def test_tone_above_new_nyquist_is_attenuated(from_rate: int, to_rate: int) -> None:
    """A tone between the new and the old Nyquist frequency comes out more than 40 dB down."""
    tone = sine(to_rate / 2 * 1.25, from_rate, 0.5)
    out = resample(tone, from_rate, to_rate)[int(SETTLE * to_rate) :]
    assert rms_dbfs(out) - rms_dbfs(tone) < -40


@pytest.mark.parametrize(("from_rate", "to_rate"), [(a, b) for a, b in RATIOS if b > a])
def test_upsampling_images_are_attenuated(from_rate: int, to_rate: int) -> None:
    """Energy above the input's Nyquist frequency (images) is more than 40 dB below the tone."""
    out = resample(sine(0.3 * from_rate, from_rate, 0.5), from_rate, to_rate)[int(SETTLE * to_rate) :]
    spectrum = np.abs(np.fft.rfft(out.astype(np.float64) * np.hanning(out.size))) ** 2
    freqs = np.fft.rfftfreq(out.size, 1 / to_rate)
    images = spectrum[freqs > from_rate / 2].sum()
    assert 10 * np.log10(images / spectrum.sum()) < -40


def test_same_rate_is_identity_and_unknown_rates_are_refused() -> None:
    """Equal rates return the input array itself; rates outside the supported set raise ValueError."""
    frame = sine(1000, 16000, 0.02)
    assert Resampler(16000, 16000).process(frame) is frame
    with pytest.raises(ValueError, match="unsupported sample rate 44100"):
        Resampler(44100, 16000)


def test_full_scale_input_saturates_instead_of_wrapping() -> None:
    """A full-scale square wave (filter overshoot) is clipped to int16, never wrapped around."""
    square = np.where(np.arange(16000) % 40 < 20, 32767, -32768).astype(np.int16)
    out = resample(square, 16000, 24000)
    assert out.dtype == np.int16
    assert out.max() == 32767 and out.min() == -32768  # the overshoot reached the rails
    # Resampling is linear: the half-scale output doubled is the unclipped result, which out must equal once clipped.
    unclipped = resample(square // 2, 16000, 24000).astype(np.int32) * 2
    assert unclipped.max() > 32767
    assert np.abs(np.clip(unclipped, -32768, 32767) - out).max() <= 3
