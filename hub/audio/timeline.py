"""Timeline stamps for audio that arrives in bursts (TTS runs faster than real time).

A chunk plays right after the previous one, unless the source fell silent: then it starts at its arrival
time. Stamping agent audio this way keeps its 20 ms slots distinct for the mixer and the recorder.
"""

from __future__ import annotations


class PlayoutClock:
    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._end_samples = 0  # where the previous chunk ends, in samples from the conversation start

    @property
    def end_ms(self) -> int:
        return self._end_samples * 1000 // self.rate

    def stamp(self, arrival_ms: int, samples: int) -> int:
        """Timeline position (ms) of a chunk of `samples` that arrived at `arrival_ms`."""
        start = max(self._end_samples, arrival_ms * self.rate // 1000)
        self._end_samples = start + samples
        return start * 1000 // self.rate
