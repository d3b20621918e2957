"""Audio DSP for the hub (numpy only): PCM16 payloads, resampling, mu-law, mixing, levels, fan-out rendering."""

from __future__ import annotations

from hub.audio.levels import DBFS_FLOOR, LevelMeter, rms_dbfs
from hub.audio.mix import MixResult, mix
from hub.audio.pcm import (
    AUDIO_INVALID,
    MAX_PAYLOAD_BYTES,
    AudioInvalid,
    as_int16,
    payload_from_argument,
    to_bytes,
    validate_pcm16,
)
from hub.audio.resample import SUPPORTED_RATES, Resampler, resample

__all__ = [
    "AUDIO_INVALID",
    "DBFS_FLOOR",
    "MAX_PAYLOAD_BYTES",
    "SUPPORTED_RATES",
    "AudioInvalid",
    "LevelMeter",
    "MixResult",
    "Resampler",
    "as_int16",
    "mix",
    "payload_from_argument",
    "resample",
    "rms_dbfs",
    "to_bytes",
    "validate_pcm16",
]
