from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hub.audio.pcm import AudioInvalid, to_bytes
from hub.recording import RECORDING_RATE, Recorder, recording_path
from tests.audio_signals import frames, sine
from tests.mp3_frames import mp3_duration, mp3_frames


def feed(recorder: Recorder, track: str, rate: int, seconds: float, start_ms: int, freq: float) -> None:
    for i, frame in enumerate(frames(sine(freq, rate, seconds), rate // 50)):
        recorder.add(track, to_bytes(frame), start_ms + 20 * i)  # type: ignore[arg-type]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_recording_is_a_valid_stereo_mp3_of_the_right_duration(tmp_path: Path) -> None:
    """Caller 3 s from 0, agent 2 s from 1 s: every frame has a sync header, 24 kHz stereo, about 3 s long."""
    target = recording_path(tmp_path, "ten_01ABC", "conv_01XYZ")
    recorder = Recorder(target)
    feed(recorder, "caller", 16000, 3.0, 0, 440)
    feed(recorder, "agent", 24000, 2.0, 1000, 880)
    assert not target.exists()
    result = recorder.finish()
    data = target.read_bytes()
    assert (result.path, result.bytes, result.duration_seconds) == (target, len(data), pytest.approx(3.0))
    parsed = mp3_frames(data)
    assert {(f.sample_rate, f.channel_mode != 3) for f in parsed} == {(RECORDING_RATE, True)}
    assert mp3_duration(data) == pytest.approx(3.0, rel=0.05)
    assert leftovers(target.parent) == []


def test_gaps_are_filled_with_silence_and_jitter_is_absorbed(tmp_path: Path) -> None:
    """1 s at 0 s and 1 s at 5 s make a 6 s recording; chunks 10 ms off their slot add no time."""
    recorder = Recorder(tmp_path / "gaps.mp3")
    feed(recorder, "caller", 16000, 1.0, 0, 300)
    feed(recorder, "caller", 16000, 1.0, 5000, 300)
    chunk = bytes(960)
    for i in range(50):
        recorder.add("agent", chunk, 20 * i + (10 if i % 2 else -10 if i else 0))
    result = recorder.finish()
    assert result.duration_seconds == pytest.approx(6.0)
    assert mp3_duration(result.path.read_bytes()) == pytest.approx(6.0, rel=0.05)


def test_audio_is_spooled_to_disk_not_kept_in_memory(tmp_path: Path) -> None:
    """While recording, each track sits in a hidden temporary PCM file beside the target."""
    recorder = Recorder(tmp_path / "spool.mp3")
    feed(recorder, "caller", 16000, 2.0, 0, 440)
    feed(recorder, "agent", 24000, 1.0, 0, 440)
    spools = sorted(tmp_path.glob(".spool.*.pcm"))
    assert sorted(p.name.split(".")[-2] for p in spools) == ["agent", "caller"]
    for spool in recorder._spools.values():
        spool.file.flush()
    assert sorted(p.stat().st_size for p in spools) == [48000, 64000]
    recorder.abort()
    assert leftovers(tmp_path) == [] and not (tmp_path / "spool.mp3").exists()


def test_abort_and_context_manager_remove_temporary_files(tmp_path: Path) -> None:
    """abort() (or leaving the with block on an error) deletes the spools and writes no recording."""
    with pytest.raises(KeyError), Recorder(tmp_path / "c.mp3") as recorder:
        feed(recorder, "caller", 16000, 0.2, 0, 440)
        raise KeyError("call failed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="already finished or aborted"):
        recorder.add("caller", bytes(640), 0)


def test_finish_replaces_an_existing_file_atomically_and_only_once(tmp_path: Path) -> None:
    """The MP3 is renamed over the target; a second finish() is refused."""
    target = tmp_path / "r.mp3"
    target.write_bytes(b"old")
    recorder = Recorder(target)
    feed(recorder, "agent", 24000, 0.5, 0, 440)
    recorder.finish()
    assert mp3_frames(target.read_bytes())
    with pytest.raises(RuntimeError):
        recorder.finish()


def test_empty_recording_is_still_a_valid_mp3(tmp_path: Path) -> None:
    """With no audio at all the file holds a few frames of silence and the duration is 0."""
    result = Recorder(tmp_path / "empty.mp3").finish()
    assert result.duration_seconds == 0.0
    assert 0 < len(mp3_frames(result.path.read_bytes())) <= 3


def test_finish_runs_in_a_worker_thread(tmp_path: Path) -> None:
    """The hub calls finish() through asyncio.to_thread."""
    recorder = Recorder(tmp_path / "thread.mp3")
    feed(recorder, "caller", 16000, 0.5, 0, 440)

    async def main() -> float:
        result = await asyncio.wait_for(asyncio.to_thread(recorder.finish), 10)
        return result.duration_seconds

    assert asyncio.run(main()) == pytest.approx(0.5)


def test_bad_input_is_refused(tmp_path: Path) -> None:
    """Unknown tracks, invalid PCM, negative or absurd timestamps and unsupported rates raise."""
    recorder = Recorder(tmp_path / "bad.mp3")
    with pytest.raises(ValueError, match="'mixed'"):
        recorder.add("mixed", bytes(640), 0)  # type: ignore[arg-type]
    with pytest.raises(AudioInvalid):
        recorder.add("caller", b"\x01", 0)
    with pytest.raises(ValueError, match="timestamp_ms"):
        recorder.add("caller", bytes(640), -1)
    with pytest.raises(ValueError, match="timestamp_ms"):
        recorder.add("caller", bytes(640), 10**12)
    recorder.abort()
    with pytest.raises(ValueError, match="44100"):
        Recorder(tmp_path / "x.mp3", caller_rate=44100)


def test_recording_path_layout_and_traversal_refused(tmp_path: Path) -> None:
    """data_dir/recordings/{tenant}/{conversation}.mp3; ids with separators, dots or NULs are refused."""
    assert recording_path(tmp_path, "ten_default", "conv_01HXDEF456GHI") == tmp_path / "recordings/ten_default/conv_01HXDEF456GHI.mp3"
    for tenant, conversation in [
        ("ten_a", "../../etc/passwd"), ("ten_a", "a/b"), ("ten_a", "a\\b"), ("..", "conv_1"),
        ("ten_a", ".."), ("ten_a", ""), ("ten_a", ".hidden"), ("ten_a", "conv\x00"), ("/abs", "conv_1"),
    ]:
        with pytest.raises(ValueError, match="invalid"):
            recording_path(tmp_path, tenant, conversation)
