"""Per-conversation audio fan-out: each distinct output format is computed once per 20 ms frame.

Subscribers ask for a track (caller, agent, or the two mixed), an encoding and a rate. The renderer holds
the union of those formats; push() re-frames a source track into 20 ms frames and returns one
RenderedFrame per wanted format and frame, which the hub then encodes into one message for every
subscriber of that format. Resampled audio is shared between formats: caller 8 kHz PCM, caller 8 kHz
mu-law and the 8 kHz mix all use one resampling of the caller frame.

The mixed track aligns the sources on 20 ms slots of the conversation timeline (slot = timestamp / 20 ms,
rounded). A slot is mixed once both sides have it, or once either side is MIX_LOOKAHEAD_SLOTS ahead of it;
a missing side counts as silence, and a slot both sides lack is skipped. Frames older than the slot being
mixed still go out on their own track but are left out of the mix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from hub.audio import mulaw
from hub.audio.levels import LevelMeter
from hub.audio.mix import mix
from hub.audio.pcm import PCM16, Int16Array, to_bytes, validate_pcm16
from hub.audio.resample import SUPPORTED_RATES, Resampler

Track = Literal["caller", "agent", "mixed"]
SourceTrack = Literal["caller", "agent"]
Encoding = Literal["pcm_s16le", "mulaw"]
SubscriptionAudio = Literal["none", "caller", "agent", "both", "mixed"]

FRAME_MS = 20
#: How far (in 20 ms slots) one side may run ahead before the mix stops waiting for the other: 60 ms.
MIX_LOOKAHEAD_SLOTS = 3
LEVEL_WINDOW_MS = 200
TRACKS: tuple[Track, ...] = get_args(Track)
ENCODINGS: tuple[Encoding, ...] = get_args(Encoding)


@dataclass(frozen=True, slots=True)
class AudioFormat:
    track: Track
    encoding: Encoding = "pcm_s16le"
    sample_rate: int = 16000

    def __post_init__(self) -> None:
        if self.track not in TRACKS:
            raise ValueError(f"unknown audio track {self.track!r}; expected one of {', '.join(TRACKS)}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"unknown audio encoding {self.encoding!r}; expected one of {', '.join(ENCODINGS)}")
        if self.sample_rate not in SUPPORTED_RATES:
            raise ValueError(f"unsupported sample rate {self.sample_rate}; expected one of {SUPPORTED_RATES}")

    @property
    def channels(self) -> int:
        return 1


def formats_for_subscription(audio: str, encoding: str = "pcm_s16le", sample_rate: int = 16000) -> frozenset[AudioFormat]:
    """The formats one subscription's `options` ask for ("both" is the caller and the agent track)."""
    if audio == "none":
        return frozenset()
    tracks: tuple[str, ...] = ("caller", "agent") if audio == "both" else (audio,)
    return frozenset(AudioFormat(track, encoding, sample_rate) for track in tracks)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RenderedFrame:
    format: AudioFormat
    frame: int  # counts the output track's 20 ms frames from 0, shared by every format of that track
    timestamp_ms: int
    data: bytes


@dataclass(slots=True)
class _Source:
    rate: int
    meter: LevelMeter
    resamplers: dict[int, Resampler] = field(default_factory=dict)
    pending: bytes = b""
    pending_ms: int = 0
    frames: int = 0
    latest_slot: int = -1
    end_ms: int = 0

    @property
    def frame_bytes(self) -> int:
        return self.rate // 50 * 2


def _encode(samples: Int16Array, encoding: Encoding) -> bytes:
    return to_bytes(samples) if encoding == "pcm_s16le" else mulaw.encode_bytes(samples)


class ConversationAudioRenderer:
    def __init__(self, *, caller_rate: int = 16000, agent_rate: int = 24000) -> None:
        self._sources: dict[SourceTrack, _Source] = {
            "caller": _Source(caller_rate, LevelMeter(LEVEL_WINDOW_MS)),
            "agent": _Source(agent_rate, LevelMeter(LEVEL_WINDOW_MS)),
        }
        self._formats: frozenset[AudioFormat] = frozenset()
        self._by_track: dict[Track, tuple[AudioFormat, ...]] = {track: () for track in TRACKS}
        self._mix_rates: tuple[int, ...] = ()
        # slot -> {rate: samples} per source, for slots not mixed yet
        self._slots: dict[SourceTrack, dict[int, dict[int, Int16Array]]] = {"caller": {}, "agent": {}}
        self._next_slot: int | None = None
        self._mixed_frames = 0
        self.limited_samples = 0  # mixed samples the soft limiter touched, for metrics

    @property
    def formats(self) -> frozenset[AudioFormat]:
        return self._formats

    def set_formats(self, formats: Iterable[AudioFormat]) -> None:
        self._formats = frozenset(formats)
        for track in TRACKS:
            self._by_track[track] = tuple(sorted((f for f in self._formats if f.track == track), key=repr))
        self._mix_rates = tuple(sorted({f.sample_rate for f in self._by_track["mixed"]}))
        for name, source in self._sources.items():
            wanted = self._rates_for(name)
            for rate in list(source.resamplers):
                if rate not in wanted:
                    del source.resamplers[rate]

    def push(self, track: SourceTrack, pcm: bytes, timestamp_ms: int) -> list[RenderedFrame]:
        source = self._sources.get(track)
        if source is None:
            raise ValueError(f"audio is pushed on 'caller' or 'agent', not {track!r}")
        if timestamp_ms < 0:
            raise ValueError(f"timestamp_ms must be >= 0, got {timestamp_ms}")
        validate_pcm16(pcm)
        out: list[RenderedFrame] = []
        if not isinstance(pcm, bytes):
            pcm = bytes(pcm)
        for chunk, chunk_ms in self._reframe(source, pcm, timestamp_ms):
            self._render(track, source, chunk, chunk_ms, out)
        if self._mix_rates or self._slots["caller"] or self._slots["agent"]:
            self._drain_mix(out, force=False)
        return out

    def flush(self) -> list[RenderedFrame]:
        """At the end of a call: pad partial frames with silence and mix every remaining slot."""
        out: list[RenderedFrame] = []
        for track, source in self._sources.items():
            if source.pending:
                chunk = source.pending + bytes(source.frame_bytes - len(source.pending))
                source.pending = b""
                self._render(track, source, chunk, source.pending_ms, out)
        self._drain_mix(out, force=True)
        return out

    def levels(self, now_ms: int | None = None) -> tuple[float, float]:
        """(caller, agent) RMS in dBFS over the last ~200 ms of the conversation timeline."""
        if now_ms is None:
            now_ms = max(source.end_ms for source in self._sources.values())
        return self._sources["caller"].meter.level(now_ms), self._sources["agent"].meter.level(now_ms)

    def _rates_for(self, track: SourceTrack) -> set[int]:
        return {f.sample_rate for f in self._by_track[track]} | set(self._mix_rates)

    def _reframe(self, source: _Source, pcm: bytes, timestamp_ms: int) -> list[tuple[bytes, int]]:
        size = source.frame_bytes
        chunks: list[tuple[bytes, int]] = []
        if source.pending:
            expected_ms = source.pending_ms + len(source.pending) * 500 // source.rate
            if abs(timestamp_ms - expected_ms) > FRAME_MS:  # not contiguous: close the partial frame with silence
                chunks.append((source.pending + bytes(size - len(source.pending)), source.pending_ms))
                data, start_ms = pcm, timestamp_ms
            else:
                data, start_ms = source.pending + pcm, source.pending_ms
            source.pending = b""
        else:
            data, start_ms = pcm, timestamp_ms
        if len(data) == size:
            chunks.append((data, start_ms))  # the common case: the caller's own bytes object, no copy
            return chunks
        whole = len(data) // size
        chunks.extend((data[i * size : (i + 1) * size], start_ms + i * FRAME_MS) for i in range(whole))
        if len(data) % size:
            source.pending = data[whole * size :]
            source.pending_ms = start_ms + whole * FRAME_MS
        return chunks

    def _render(self, track: SourceTrack, source: _Source, chunk: bytes, chunk_ms: int, out: list[RenderedFrame]) -> None:
        samples: Int16Array = np.frombuffer(chunk, dtype=PCM16)
        source.meter.add(samples, chunk_ms + FRAME_MS)
        source.end_ms = max(source.end_ms, chunk_ms + FRAME_MS)
        resampled: dict[int, Int16Array] = {}

        def at(rate: int) -> Int16Array:
            found = resampled.get(rate)
            if found is None:
                if rate == source.rate:
                    found = samples
                else:
                    resampler = source.resamplers.get(rate)
                    if resampler is None:
                        resampler = source.resamplers[rate] = Resampler(source.rate, rate)
                    found = resampler.process(samples)
                resampled[rate] = found
            return found

        for fmt in self._by_track[track]:
            if fmt.encoding == "pcm_s16le" and fmt.sample_rate == source.rate:
                data = chunk
            else:
                data = _encode(at(fmt.sample_rate), fmt.encoding)
            out.append(RenderedFrame(fmt, source.frames, chunk_ms, data))
        source.frames += 1

        slot = (chunk_ms + FRAME_MS // 2) // FRAME_MS
        source.latest_slot = max(source.latest_slot, slot)
        if self._next_slot is None:
            self._next_slot = slot
        if slot >= self._next_slot and self._mix_rates:  # nobody wants the mix: no slot bookkeeping per frame
            self._slots[track][slot] = {rate: at(rate) for rate in self._mix_rates}

    def _drain_mix(self, out: list[RenderedFrame], *, force: bool) -> None:
        caller, agent = self._slots["caller"], self._slots["agent"]
        latest = max(source.latest_slot for source in self._sources.values())
        while (caller or agent) and self._next_slot is not None:
            slot = self._next_slot
            if slot not in caller and slot not in agent:  # neither side has it: skip to the next buffered slot
                slot = self._next_slot = min(min(caller, default=latest + 1), min(agent, default=latest + 1))
            both = slot in caller and slot in agent
            if not (both or force or latest - slot >= MIX_LOOKAHEAD_SLOTS):
                return
            self._emit_mixed(slot, caller.pop(slot, None), agent.pop(slot, None), out)
            self._next_slot = slot + 1

    def _emit_mixed(
        self, slot: int, caller: dict[int, Int16Array] | None, agent: dict[int, Int16Array] | None, out: list[RenderedFrame]
    ) -> None:
        frame = self._mixed_frames
        self._mixed_frames += 1
        mixed: dict[int, Int16Array] = {}
        for fmt in self._by_track["mixed"]:
            samples = mixed.get(fmt.sample_rate)
            if samples is None:
                found = self._mix_rate(caller, agent, fmt.sample_rate)
                if found is None:
                    continue  # the format was added after both sides of this slot arrived
                samples = mixed[fmt.sample_rate] = found
            out.append(RenderedFrame(fmt, frame, slot * FRAME_MS, _encode(samples, fmt.encoding)))

    def _mix_rate(
        self, caller: dict[int, Int16Array] | None, agent: dict[int, Int16Array] | None, rate: int
    ) -> Int16Array | None:
        c = caller.get(rate) if caller else None
        a = agent.get(rate) if agent else None
        if c is None or a is None:
            return a if c is None else c  # the missing side is silence
        result = mix(c, a)
        self.limited_samples += result.limited
        return result.samples
