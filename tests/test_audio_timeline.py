from __future__ import annotations

from hub.audio.timeline import PlayoutClock


def test_bursts_are_laid_end_to_end_and_silence_restarts_at_arrival() -> None:
    """Five 20 ms frames arriving at once get 0, 20, .. 80 ms; a frame after a pause starts when it arrives."""
    clock = PlayoutClock(24000)
    assert [clock.stamp(0, 480) for _ in range(5)] == [0, 20, 40, 60, 80]
    assert clock.end_ms == 100
    assert clock.stamp(60, 480) == 100  # still queued behind the burst
    assert clock.stamp(500, 480) == 500
    assert clock.stamp(505, 240) == 520
    assert clock.end_ms == 530
