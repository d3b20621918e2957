"""Caller audio for simulated calls: PCM16 16 kHz mono utterances separated by silence.

espeak-ng speech when it is installed (rendered once per phrase and process), else a synthesized
speech-like signal (voiced syllables: a 120-180 Hz glottal tone with formant-like harmonics under a
syllable envelope). Both give the echo agent's VAD clear utterances and pauses.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import wave

import numpy as np

RATE = 16000
FRAME_BYTES = 640  # 20 ms
PHRASES = (
    "Hello, I would like to check the status of my order.",
    "It was placed last Tuesday, order number four five six.",
    "Can you tell me when it will arrive?",
    "Thank you, that is all for today.",
)
AGENT_LINES = (
    "Of course. Can you give me the order number?",
    "Thank you. Order four five six left our warehouse yesterday.",
    "It should arrive on Friday.",
    "You are welcome. Goodbye!",
)
"""What the echo agent says after each phrase when a simulated call passes the dialogue in its metadata."""


def dialogue(index: int, turns: int) -> dict[str, list[str]]:
    """Metadata for the echo agent (`script`, `userScript`): the lines of the first `turns` turns from phrase `index`."""
    order = [(index + n) % len(PHRASES) for n in range(turns)]
    return {"userScript": [PHRASES[i] for i in order], "script": [AGENT_LINES[i] for i in order]}


@functools.lru_cache(maxsize=16)
def espeak_phrase(text: str) -> bytes | None:
    """PCM16 16 kHz of `text` from espeak-ng, or None when it is not installed or fails."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--stdout", text], capture_output=True, timeout=20, check=True).stdout
        with wave.open(io.BytesIO(out)) as wav:
            rate = wav.getframerate()
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64)
    except (OSError, subprocess.SubprocessError, wave.Error, EOFError):
        return None
    positions = np.arange(0, len(samples), rate / RATE)
    return bytes(np.interp(positions, np.arange(len(samples)), samples).astype("<i2").tobytes())


def synthetic_phrase(syllables: int, seed: int) -> bytes:
    """Speech-like PCM16 16 kHz: `syllables` voiced syllables of 150-250 ms."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(syllables):
        length = int(RATE * rng.uniform(0.15, 0.25))
        t = np.arange(length) / RATE
        f0 = rng.uniform(120, 180)
        voiced = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 12))
        formant = 1 + 0.6 * np.sin(2 * np.pi * rng.uniform(500, 900) * t)
        envelope = np.sin(np.pi * np.arange(length) / length) ** 0.6
        parts.append(voiced * formant * envelope * 4000)
        parts.append(np.zeros(int(RATE * rng.uniform(0.02, 0.06))))
    return bytes(np.clip(np.concatenate(parts), -32768, 32767).astype("<i2").tobytes())


def utterance(index: int, *, use_espeak: bool = True) -> bytes:
    phrase = PHRASES[index % len(PHRASES)]
    spoken = espeak_phrase(phrase) if use_espeak else None
    return spoken if spoken is not None else synthetic_phrase(len(phrase.split()) + 2, seed=index)


def frames(pcm: bytes) -> list[bytes]:
    """20 ms frames, the last padded with silence."""
    padded = pcm + b"\0" * (-len(pcm) % FRAME_BYTES)
    return [padded[i:i + FRAME_BYTES] for i in range(0, len(padded), FRAME_BYTES)]


SILENCE_FRAME = b"\0" * FRAME_BYTES
