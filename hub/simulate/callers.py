"""Simulated callers, as a library: `await simulate_call(base, token, duration=...)` drives one caller
through a whole session (speech, pauses, one DTMF digit, hang-up) in real time; `simulate_calls` runs N
of them concurrently and reports progress."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hub.client.signalr import HubError
from hub.client.voice import VoiceCaller
from hub.simulate.speech import SILENCE_FRAME, dialogue, frames, utterance

log = logging.getLogger("hub.simulate")

FRAME_SECONDS = 0.02
PAUSE_FRAMES = 50  # 1 s of silence after each utterance: the agent answers in the pause


@dataclass
class CallResult:
    conversation_id: str = ""
    frames_sent: int = 0
    agent_audio_bytes: int = 0
    final_turns: int = 0
    ended: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0
    errors: list[dict[str, Any]] = field(default_factory=list)


Progress = Callable[[int, CallResult], None]


async def simulate_call(base_url: str, token: str, *, duration: float = 20.0, agent_id: str = "agt_simulated",
                        metadata: dict[str, Any] | None = None, msgpack: bool = False, index: int = 0,
                        use_espeak: bool = True, progress: Progress | None = None) -> CallResult:
    """One caller for about `duration` seconds of audio, paced at real time; then EndSessionAsync. The metadata
    carries the dialogue (`userScript`, `script`) so the echo agent's transcript has the spoken words."""
    result = CallResult()
    started = time.monotonic()
    metadata = dict(metadata or {"simulated": True, "index": index})
    if "script" not in metadata and "userScript" not in metadata:
        metadata.update(dialogue(index, min(8, 1 + int(duration / 2))))
    try:
        caller = await VoiceCaller.connect(base_url, token, agent_id=agent_id, msgpack=msgpack, metadata=metadata)
    except (HubError, OSError) as exc:
        result.error = str(exc)
        return result
    result.conversation_id = caller.conversation_id
    try:
        total = max(1, int(duration / FRAME_SECONDS))
        schedule = await asyncio.to_thread(_schedule, total, index, use_espeak)  # espeak-ng runs once
        next_at = time.monotonic()
        for number, frame in enumerate(schedule):
            if caller.hub.closed.is_set():
                raise HubError(f"the hub closed the call: {caller.hub.close_error or 'no reason given'}")
            await caller.send_audio(frame)
            result.frames_sent += 1
            if number == total // 2:
                await caller.send_dtmf(str(index % 10))
            if progress is not None and number % 50 == 0:
                _collect(caller, result)
                progress(index, result)
            next_at += FRAME_SECONDS
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        result.ended = await caller.end("user_ended")
    except (HubError, OSError, TimeoutError) as exc:
        result.error = str(exc) or type(exc).__name__
    finally:
        _collect(caller, result)
        await caller.close()
        result.seconds = time.monotonic() - started
        if progress is not None:
            progress(index, result)
    return result


def _schedule(total: int, index: int, use_espeak: bool) -> list[bytes]:
    schedule: list[bytes] = []
    turn = index
    while len(schedule) < total:
        schedule += frames(utterance(turn, use_espeak=use_espeak))
        schedule += [SILENCE_FRAME] * PAUSE_FRAMES
        turn += 1
    return schedule[:total]


def _collect(caller: VoiceCaller, result: CallResult) -> None:
    result.agent_audio_bytes = len(caller.agent_audio())
    result.final_turns = len(caller.final_turns())
    result.errors = caller.log.of("Error")


async def simulate_calls(base_url: str, token: str, calls: int, *, duration: float = 20.0,
                         agent_id: str = "agt_simulated", msgpack: bool = False, stagger: float = 0.2,
                         progress: Progress | None = None) -> list[CallResult]:
    """`calls` concurrent callers, started `stagger` seconds apart."""

    async def one(index: int) -> CallResult:
        await asyncio.sleep(index * stagger)
        return await simulate_call(base_url, token, duration=duration, agent_id=agent_id, msgpack=msgpack,
                                   index=index, progress=progress)

    return list(await asyncio.gather(*(one(i) for i in range(calls))))
