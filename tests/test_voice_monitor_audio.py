"""AudioFrame in every requested format (pcm_s16le / mulaw, 8-48 kHz, caller / agent / both / mixed), over JSON
(base64) and MessagePack (bin), with per-track frame counters; AudioLevel for subscribers without audio."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import numpy as np
import pytest

from hub.audio.mulaw import decode_bytes as mulaw_decode
from tests.broker_rig import KINDS
from tests.support.timing import eventually, scaled
from tests.voice_rig import backend_url, open_call, open_monitor, publisher, voice_hub

# (audio, encoding, sampleRate, msgpack)
SUBSCRIPTIONS = [
    ("caller", "pcm_s16le", 16000, False),
    ("caller", "mulaw", 8000, True),
    ("agent", "pcm_s16le", 24000, True),
    ("agent", "mulaw", 48000, False),
    ("both", "pcm_s16le", 8000, False),
    ("mixed", "pcm_s16le", 48000, True),
    ("mixed", "mulaw", 16000, False),
    ("mixed", "mulaw", 24000, True),
]


def tone(freq: float, seconds: float, rate: int, amplitude: float = 8000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * amplitude).astype("<i2").tobytes()


def dominant_hz(pcm: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(len(pcm))))
    return float(np.argmax(spectrum) * rate / len(pcm))


@pytest.mark.parametrize("kind", KINDS)
def test_audio_frames_in_each_requested_format(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(backend_url(kind, request), agent="none", tmp_path=tmp_path) as rig:
            caller = await open_call(rig)
            cid = caller.conversation_id
            monitors = []
            for audio, encoding, rate, msgpack in SUBSCRIPTIONS:
                monitor = await open_monitor(rig, msgpack=msgpack)
                await monitor.subscribe(cid, {"audio": audio, "encoding": encoding, "sampleRate": rate})
                monitors.append(monitor)
            quiet = await open_monitor(rig, scopes=frozenset({"monitor:read"}))  # no monitor:listen: levels only
            await quiet.subscribe(cid)
            pub = publisher(rig, cid)
            caller_pcm = tone(500, 0.6, 16000)
            agent_pcm = tone(1000, 0.6, 24000)
            for n in range(30):
                await caller.send_audio(caller_pcm[n * 640:(n + 1) * 640])
                await pub.send_agent_audio(agent_pcm[n * 960:(n + 1) * 960])
                await asyncio.sleep(0.02)

            for (audio, encoding, rate, msgpack), monitor in zip(SUBSCRIPTIONS, monitors, strict=True):
                tracks = ("caller", "agent") if audio == "both" else (audio,)

                def enough(m: Any = monitor, tracks: tuple[str, ...] = tracks) -> bool:
                    frames = m.log.of("AudioFrame")
                    return all(sum(1 for f in frames if f["track"] == t) >= 20 for t in tracks)

                await eventually(enough, 10, f"frames for {audio} {encoding} {rate}")
                frames = monitor.log.of("AudioFrame")
                assert {f["track"] for f in frames} == set(tracks)
                for track in tracks:
                    mine = [f for f in frames if f["track"] == track]
                    counters = [f["frame"] for f in mine]
                    assert counters == list(range(counters[0], counters[0] + len(counters))), counters
                    stamps = [f["timestampMs"] for f in mine]
                    assert all(b - a == 20 for a, b in zip(stamps, stamps[1:], strict=False)), stamps
                    payload = b""
                    for frame in mine:
                        assert frame["conversationId"] == cid and frame["channels"] == 1
                        assert frame["encoding"] == encoding and frame["sampleRate"] == rate
                        data = frame["data"]
                        assert isinstance(data, bytes if msgpack else str)
                        raw = data if isinstance(data, bytes) else base64.b64decode(data)
                        assert len(raw) == rate // 50 * (2 if encoding == "pcm_s16le" else 1)
                        payload += raw
                    samples = (mulaw_decode(payload) if encoding == "mulaw" else np.frombuffer(payload, "<i2"))
                    middle = samples[len(samples) // 4: len(samples) * 3 // 4]
                    expected = {"caller": 500, "agent": 1000}.get(track)
                    if expected is not None and expected < rate / 2:
                        assert abs(dominant_hz(middle, rate) - expected) < 60, (track, rate)
                    assert np.sqrt(np.mean(middle.astype(np.float64) ** 2)) > 1000
            await eventually(lambda: len(quiet.log.of("AudioLevel")) >= 1, 5, "levels for the monitor without audio")
            level = quiet.log.of("AudioLevel")[-1]
            assert level["conversationId"] == cid and -30 < level["caller"] < 0 and -30 < level["agent"] < 0
            assert not quiet.log.of("AudioFrame")
            assert all(not m.log.of("AudioLevel") for m in monitors)
            for client in (*monitors, quiet, caller):
                await client.close()

    asyncio.run(main())


def test_audio_without_listen_scope_is_refused(tmp_path: Any) -> None:
    async def main() -> None:
        async with voice_hub(agent="none", tmp_path=tmp_path) as rig:
            caller = await open_call(rig)
            monitor = await open_monitor(rig, scopes=frozenset({"monitor:read"}))
            with pytest.raises(Exception, match="monitor:listen"):
                await monitor.subscribe(caller.conversation_id, {"audio": "mixed"})
            await monitor.subscribe(caller.conversation_id)
            with pytest.raises(Exception, match="monitor:listen"):
                await monitor.update_subscription(caller.conversation_id, {"audio": "caller"})
            await caller.send_audio(b"\x00\x10" * 320)
            await asyncio.sleep(scaled(0.1))
            assert not monitor.log.of("AudioFrame")
            await monitor.close()
            await caller.close()

    asyncio.run(main())
