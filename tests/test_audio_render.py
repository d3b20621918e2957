from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

from hub.audio import mulaw
from hub.audio.levels import DBFS_FLOOR
from hub.audio.mix import mix
from hub.audio.pcm import AudioInvalid, to_bytes
from hub.audio.render import AudioFormat, ConversationAudioRenderer, RenderedFrame, formats_for_subscription
from hub.audio.resample import Resampler, resample
from tests.audio_signals import frames, sine

CALLER_16K = AudioFormat("caller", "pcm_s16le", 16000)
AGENT_24K = AudioFormat("agent", "pcm_s16le", 24000)


def caller_frames(seconds: float = 0.2, freq: float = 500) -> list[bytes]:
    return [to_bytes(f) for f in frames(sine(freq, 16000, seconds), 320)]


def agent_frames(seconds: float = 0.2, freq: float = 1300) -> list[bytes]:
    return [to_bytes(f) for f in frames(sine(freq, 24000, seconds), 480)]


def by_format(out: list[RenderedFrame]) -> dict[AudioFormat, list[RenderedFrame]]:
    grouped: dict[AudioFormat, list[RenderedFrame]] = {}
    for frame in out:
        grouped.setdefault(frame.format, []).append(frame)
    return grouped


def pcm(frame: RenderedFrame) -> npt.NDArray[np.int16]:
    return np.frombuffer(frame.data, dtype="<i2")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    counter: Counter[str] = Counter()
    process, encode = Resampler.process, mulaw.encode_bytes

    def counting_process(self: Resampler, frame: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        counter[f"resample {self.from_rate}->{self.to_rate}"] += 1
        return process(self, frame)

    def counting_encode(samples: npt.NDArray[np.int16]) -> bytes:
        counter["mulaw"] += 1
        return encode(samples)

    monkeypatch.setattr(Resampler, "process", counting_process)
    monkeypatch.setattr(mulaw, "encode_bytes", counting_encode)
    yield counter


def test_audio_format_is_frozen_hashable_and_validated() -> None:
    """AudioFormat compares by value, works in sets, and refuses unknown tracks, encodings and rates."""
    assert {AudioFormat("caller"), AudioFormat("caller", "pcm_s16le", 16000)} == {CALLER_16K}
    with pytest.raises(AttributeError):
        CALLER_16K.sample_rate = 8000  # type: ignore[misc]
    for bad in (("both", "pcm_s16le", 16000), ("caller", "opus", 16000), ("caller", "mulaw", 44100)):
        with pytest.raises(ValueError):
            AudioFormat(*bad)  # type: ignore[arg-type]
    assert formats_for_subscription("none") == frozenset()
    assert formats_for_subscription("both", "mulaw", 8000) == {AudioFormat("caller", "mulaw", 8000), AudioFormat("agent", "mulaw", 8000)}


def test_source_format_returns_the_input_bytes_object() -> None:
    """Caller PCM16 16 kHz and agent PCM16 24 kHz subscribers get the pushed bytes object itself."""
    renderer = ConversationAudioRenderer()
    renderer.set_formats({CALLER_16K, AGENT_24K})
    c, a = caller_frames()[0], agent_frames()[0]
    [out_c] = renderer.push("caller", c, 0)
    [out_a] = renderer.push("agent", a, 0)
    assert out_c.data is c and out_a.data is a
    assert (out_c.format, out_c.frame, out_c.timestamp_ms) == (CALLER_16K, 0, 0)


def test_each_distinct_format_is_computed_once_per_frame(calls: Counter[str]) -> None:
    """One resampling per (track, rate) and one encoding per format, shared by the caller and the mixed track."""
    formats = {
        AudioFormat("caller", "pcm_s16le", 8000),
        AudioFormat("caller", "mulaw", 8000),
        AudioFormat("mixed", "mulaw", 8000),
        AudioFormat("agent", "mulaw", 16000),
        AGENT_24K,
    }
    renderer = ConversationAudioRenderer()
    renderer.set_formats(list(formats) * 3)  # many subscribers, same union
    out: list[RenderedFrame] = []
    for i, (c, a) in enumerate(zip(caller_frames(0.1), agent_frames(0.1), strict=True)):
        out += renderer.push("caller", c, 20 * i)
        out += renderer.push("agent", a, 20 * i)
    assert calls == Counter({"resample 16000->8000": 5, "resample 24000->8000": 5, "resample 24000->16000": 5, "mulaw": 15})
    grouped = by_format(out)
    assert set(grouped) == formats
    assert all([f.frame for f in grouped[fmt]] == [0, 1, 2, 3, 4] for fmt in formats)
    assert [f.timestamp_ms for f in grouped[AudioFormat("mixed", "mulaw", 8000)]] == [0, 20, 40, 60, 80]


def test_frame_counters_are_per_track_and_shared_by_formats() -> None:
    """A format added mid-call continues the track's counter; caller and agent count separately."""
    renderer = ConversationAudioRenderer()
    renderer.set_formats({CALLER_16K})
    chunks = caller_frames(0.1)
    for i, chunk in enumerate(chunks[:3]):
        renderer.push("caller", chunk, 20 * i)
    late = AudioFormat("caller", "mulaw", 8000)
    renderer.set_formats({CALLER_16K, late, AGENT_24K})
    out = renderer.push("caller", chunks[3], 60) + renderer.push("agent", agent_frames()[0], 60)
    assert sorted((f.format.track, f.format.encoding, f.frame) for f in out) == [
        ("agent", "pcm_s16le", 0), ("caller", "mulaw", 3), ("caller", "pcm_s16le", 3),
    ]


def test_long_and_odd_payloads_are_reframed_into_20_ms_frames() -> None:
    """100 ms in gives five 20 ms frames; 321 samples leave one sample pending for the next push."""
    renderer = ConversationAudioRenderer()
    renderer.set_formats({CALLER_16K})
    signal = to_bytes(sine(500, 16000, 0.2))
    out = renderer.push("caller", signal[:3200], 1000)
    assert [(f.frame, f.timestamp_ms, len(f.data)) for f in out] == [(i, 1000 + 20 * i, 640) for i in range(5)]
    assert b"".join(f.data for f in out) == signal[:3200]
    out = renderer.push("caller", signal[3200:3842], 1100)
    assert [(f.frame, f.timestamp_ms) for f in out] == [(5, 1100)]
    out = renderer.push("caller", signal[3842:4480], 1120)
    assert [(f.frame, f.timestamp_ms) for f in out] == [(6, 1120)]
    assert b"".join(f.data for f in out) == signal[3840:4480]


def test_resampled_track_is_continuous_across_frames() -> None:
    """Caller audio rendered at 48 kHz frame by frame equals one-shot resampling of the whole signal."""
    fmt = AudioFormat("caller", "pcm_s16le", 48000)
    renderer = ConversationAudioRenderer()
    renderer.set_formats({fmt})
    signal = sine(700, 16000, 0.3)
    out = [f for i, c in enumerate(frames(signal, 320)) for f in renderer.push("caller", to_bytes(c), 20 * i)]
    assert {len(f.data) for f in out} == {960 * 2}
    joined = np.concatenate([pcm(f) for f in out]).astype(np.int32)
    assert np.abs(joined - resample(signal, 16000, 48000)).max() <= 1


def test_mixed_frame_is_the_sum_when_both_sides_have_the_slot() -> None:
    """With both sides present the mix goes out at once and equals mix(caller, agent resampled to the mix rate)."""
    fmt = AudioFormat("mixed", "pcm_s16le", 16000)
    renderer = ConversationAudioRenderer()
    renderer.set_formats({fmt})
    agent_resampler = Resampler(24000, 16000)
    for i, (c, a) in enumerate(zip(caller_frames(0.1), agent_frames(0.1), strict=True)):
        assert renderer.push("caller", c, 20 * i) == []
        [mixed] = renderer.push("agent", a, 20 * i)
        expected = mix(np.frombuffer(c, dtype="<i2"), agent_resampler.process(np.frombuffer(a, dtype="<i2"))).samples
        assert (mixed.frame, mixed.timestamp_ms) == (i, 20 * i)
        assert np.array_equal(pcm(mixed), expected)


def test_mixed_track_treats_a_missing_side_as_silence_after_60_ms() -> None:
    """With no agent audio, slot n is mixed when the caller reaches slot n + 3; late agent audio is left out."""
    fmt = AudioFormat("mixed", "pcm_s16le", 16000)
    renderer = ConversationAudioRenderer()
    renderer.set_formats({fmt, AGENT_24K})
    chunks = caller_frames(0.2)
    assert [renderer.push("caller", c, 20 * i) for i, c in enumerate(chunks[:3])] == [[], [], []]
    [mixed] = renderer.push("caller", chunks[3], 60)
    assert (mixed.frame, mixed.timestamp_ms, mixed.data) == (0, 0, chunks[0])
    late = renderer.push("agent", agent_frames()[0], 0)  # slot 0 is already mixed
    assert [f.format for f in late] == [AGENT_24K]
    # The agent is now ahead: slots 1..3 of the caller are mixed with silence once the agent reaches slot 7.
    out = renderer.push("agent", agent_frames()[1], 140)
    assert [(f.format.track, f.frame, f.timestamp_ms) for f in out] == [
        ("agent", 1, 140), ("mixed", 1, 20), ("mixed", 2, 40), ("mixed", 3, 60),
    ]
    assert [f.data for f in out[1:]] == chunks[1:4]
    flushed = renderer.flush()
    assert [(f.frame, f.timestamp_ms) for f in flushed] == [(4, 140)]  # the slot nobody had (80..120) is skipped


def test_mixing_loud_sides_is_limited_and_counted() -> None:
    """Two near-full-scale sides are soft-limited in the mix and counted in limited_samples."""
    fmt = AudioFormat("mixed", "pcm_s16le", 24000)
    renderer = ConversationAudioRenderer()
    renderer.set_formats({fmt})
    c = to_bytes(sine(440, 16000, 0.02, amplitude=30000))
    a = to_bytes(sine(440, 24000, 0.02, amplitude=30000, phase=0.3))
    renderer.push("caller", c, 0)
    [mixed] = renderer.push("agent", a, 0)
    assert renderer.limited_samples > 0
    assert np.abs(pcm(mixed).astype(np.int32)).max() <= 32767


def test_levels_cover_the_last_200_ms_per_side() -> None:
    """levels() gives (caller, agent) dBFS; a side without recent audio reads the floor."""
    renderer = ConversationAudioRenderer()
    loud = [to_bytes(f) for f in frames(sine(1000, 16000, 0.4, amplitude=32767), 320)]
    for i, chunk in enumerate(loud):
        renderer.push("caller", chunk, 20 * i)
    caller, agent = renderer.levels()
    assert caller == pytest.approx(-3.01, abs=0.05)
    assert agent == DBFS_FLOOR
    assert renderer.levels(now_ms=1000) == (DBFS_FLOOR, DBFS_FLOOR)


def test_bad_input_is_refused() -> None:
    """Invalid PCM raises AudioInvalid; an unknown track or a negative timestamp raises ValueError."""
    renderer = ConversationAudioRenderer()
    with pytest.raises(AudioInvalid):
        renderer.push("caller", b"\x00", 0)
    with pytest.raises(ValueError, match="'mixed'"):
        renderer.push("mixed", bytes(640), 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timestamp"):
        renderer.push("caller", bytes(640), -20)
