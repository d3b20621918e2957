"""Call recording: caller and agent audio on the conversation timeline, encoded to one MP3 at the end.

While the call runs, each track is spooled as raw PCM16 to a temporary file next to the target, so memory
stays flat however long the call is. A chunk lands at its timestamp: a gap of more than GAP_TOLERANCE_MS
is filled with silence; smaller gaps and overlaps (network jitter) are absorbed by appending at the write
position, so no audio is dropped and drift never exceeds the tolerance.

finish() streams both spools through the resampler into a stereo MP3 (caller left, agent right,
RECORDING_RATE, RECORDING_BITRATE_KBPS CBR via lameenc), writes it to a temporary file and renames it
over the target. It is CPU-bound and synchronous: call it with asyncio.to_thread.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal

import lameenc
import numpy as np

from hub.audio.pcm import PCM16, Int16Array, validate_pcm16
from hub.audio.resample import SUPPORTED_RATES, Resampler

RecordedTrack = Literal["caller", "agent"]

RECORDING_RATE = 24000
RECORDING_BITRATE_KBPS = 48
LAME_QUALITY = 5  # 0 best and slowest .. 9 fastest
GAP_TOLERANCE_MS = 40
#: Longest timeline a recording accepts; a timestamp beyond it is a client bug, not hours of silence to write.
MAX_RECORDING_SECONDS = 4 * 3600
_BLOCK_SECONDS = 1

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def recording_path(data_dir: Path | str, tenant_id: str, conversation_id: str) -> Path:
    """data_dir/recordings/{tenant}/{conversation}.mp3; ids with separators, dots or other characters are refused."""
    for name, value in (("tenant id", tenant_id), ("conversation id", conversation_id)):
        if not _ID.fullmatch(value):
            raise ValueError(f"invalid {name} {value!r} for a recording path: letters, digits, '_' and '-' only")
    return Path(data_dir) / "recordings" / tenant_id / f"{conversation_id}.mp3"


@dataclass(frozen=True, slots=True)
class RecordingResult:
    path: Path
    duration_seconds: float
    bytes: int


class _Spool:
    def __init__(self, directory: Path, stem: str, track: str, rate: int) -> None:
        fd, name = tempfile.mkstemp(dir=directory, prefix=f".{stem}.", suffix=f".{track}.pcm")
        self.path = Path(name)
        self.file: BinaryIO = os.fdopen(fd, "w+b")
        self.rate = rate
        self.samples = 0  # written so far: the track's end on the timeline

    def place(self, pcm: bytes, timestamp_ms: int) -> None:
        start = timestamp_ms * self.rate // 1000
        gap = start - self.samples
        if gap > GAP_TOLERANCE_MS * self.rate // 1000:
            block = self.rate * 2 * _BLOCK_SECONDS
            remaining = gap * 2
            while remaining > 0:
                self.file.write(bytes(min(block, remaining)))
                remaining -= block
            self.samples = start
        self.file.write(pcm)
        self.samples += len(pcm) // 2

    def close(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


class Recorder:
    def __init__(self, path: Path, *, caller_rate: int = 16000, agent_rate: int = 24000) -> None:
        for rate in (caller_rate, agent_rate):
            if rate not in SUPPORTED_RATES:
                raise ValueError(f"unsupported sample rate {rate}; expected one of {SUPPORTED_RATES}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._rates: dict[RecordedTrack, int] = {"caller": caller_rate, "agent": agent_rate}
        self._spools: dict[RecordedTrack, _Spool] = {}
        self._lock = threading.Lock()
        self._done = False

    def add(self, track: RecordedTrack, pcm: bytes, timestamp_ms: int) -> None:
        if track not in self._rates:
            raise ValueError(f"recorded tracks are 'caller' and 'agent', not {track!r}")
        if not 0 <= timestamp_ms <= MAX_RECORDING_SECONDS * 1000:
            raise ValueError(f"timestamp_ms {timestamp_ms} is outside the recording's 0..{MAX_RECORDING_SECONDS} s")
        validate_pcm16(pcm)
        with self._lock:
            if self._done:
                raise RuntimeError("the recording is already finished or aborted")
            spool = self._spools.get(track)
            if spool is None:
                spool = self._spools[track] = _Spool(self.path.parent, self.path.stem, track, self._rates[track])
            spool.place(pcm, timestamp_ms)

    def finish(self) -> RecordingResult:
        with self._lock:
            if self._done:
                raise RuntimeError("the recording is already finished or aborted")
            self._done = True
            try:
                return self._encode()
            finally:
                self._close_spools()

    def abort(self) -> None:
        with self._lock:
            self._done = True
            self._close_spools()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.abort()

    def _close_spools(self) -> None:
        for spool in self._spools.values():
            spool.close()
        self._spools.clear()

    def _encode(self) -> RecordingResult:
        duration = max((s.samples / s.rate for s in self._spools.values()), default=0.0)
        total = round(duration * RECORDING_RATE)
        encoder = lameenc.Encoder()
        encoder.set_bit_rate(RECORDING_BITRATE_KBPS)
        encoder.set_in_sample_rate(RECORDING_RATE)
        encoder.set_out_sample_rate(RECORDING_RATE)  # LAME would pick 22.05 kHz for this bitrate
        encoder.set_channels(2)
        encoder.set_quality(LAME_QUALITY)
        readers = {track: self._reader(track) for track in ("caller", "agent")}
        fd, name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".part")
        part = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                block = RECORDING_RATE * _BLOCK_SECONDS
                stereo = np.zeros((block, 2), dtype=np.int16)
                # An empty recording still gets one MP3 frame of silence, so the file is always valid.
                for start in range(0, max(total, 1), block):
                    n = min(block, total - start) if total else 576
                    stereo[:, 0] = readers["caller"]()
                    stereo[:, 1] = readers["agent"]()
                    out.write(encoder.encode(stereo[:n].tobytes()))
                out.write(encoder.flush())
                out.flush()
                os.fsync(out.fileno())
            os.replace(part, self.path)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return RecordingResult(self.path, duration, self.path.stat().st_size)

    def _reader(self, track: RecordedTrack) -> _BlockReader:
        return _BlockReader(self._spools.get(track), self._rates[track])


class _BlockReader:
    """Yields consecutive RECORDING_RATE blocks of one spooled track (silence past its end)."""

    def __init__(self, spool: _Spool | None, rate: int) -> None:
        self._file = spool.file if spool else None
        if self._file is not None:
            self._file.flush()
            self._file.seek(0)
        self._in_block = rate * _BLOCK_SECONDS
        self._resampler = Resampler(rate, RECORDING_RATE)

    def __call__(self) -> Int16Array:
        samples = np.zeros(self._in_block, dtype=np.int16)
        if self._file is not None:
            data = self._file.read(self._in_block * 2)
            samples[: len(data) // 2] = np.frombuffer(data, dtype=PCM16)
        return self._resampler.process(samples)
