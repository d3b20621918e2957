"""Reference echo agent: per started conversation, an energy VAD on caller audio, user and agent turns, echoed speech.

No STT or TTS: the user turn describes the speech ("[speech 1.4 s]"), the agent says how long it was and plays the
utterance back at 24 kHz, after a greeting (espeak-ng if installed, else a tone). Agent audio is paced in real time.
A script gives the turns' text instead: the conversation's metadata `{"script": [agent lines], "userScript": [user
lines]}`, else the agent's own script (`python -m hub agent --script FILE`, one agent line per line); turn n uses
line n while there are lines. Costs follow each answer; once the conversation ends the agent publishes an analysis.
Caller frames wait in a bounded queue per conversation (CALLER_QUEUE frames); when it is full new frames are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import shutil
import time
import wave
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from hub.audio.resample import resample
from hub.broker.base import Broker
from hub.publisher import FRAME_BYTES, Publisher, new_turn_id, now_iso

log = logging.getLogger("hub.agent")

SPEECH_RMS = 500.0  # int16 RMS above which a frame counts as speech (about -36 dBFS)
PAUSE_S = 0.6
PARTIAL_EVERY_S = 0.5
CALLER_QUEUE = 500
MAX_UTTERANCE_S = 30.0
GREETING = "Hello, this is the VoiceHub echo agent. Say something and I will repeat it."


_greeting: bytes | None = None


async def greeting_audio() -> bytes:
    """The greeting as PCM16 24 kHz mono, rendered once per process (calls that start together may render twice)."""
    global _greeting
    if _greeting is None:
        _greeting = await _render_greeting()
    return _greeting


async def _render_greeting() -> bytes:
    """espeak-ng speech when available, else a 0.4 s 440 Hz tone."""
    exe = shutil.which("espeak-ng")
    if exe is not None:
        proc = await asyncio.create_subprocess_exec(exe, "--stdout", GREETING, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.DEVNULL)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 10)
            with wave.open(io.BytesIO(out)) as wav:
                rate, samples = wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
            positions = np.arange(0, len(samples), rate / 24000)
            return np.interp(positions, np.arange(len(samples)), samples.astype(np.float32)).astype("<i2").tobytes()
        except Exception:
            log.warning("espeak-ng failed; greeting with a tone", exc_info=True)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    t = np.arange(int(0.4 * 24000)) / 24000
    return (np.sin(2 * np.pi * 440 * t) * 6000).astype("<i2").tobytes()


@dataclass(frozen=True)
class Script:
    """The text of the turns: agent lines and user lines, used in order while they last."""

    agent: tuple[str, ...] = ()
    user: tuple[str, ...] = ()

    @classmethod
    def from_metadata(cls, metadata: Any, default: Script | None = None) -> Script:
        default = default or cls()
        if not isinstance(metadata, dict):
            return default
        agent, user = _lines(metadata.get("script")), _lines(metadata.get("userScript"))
        return cls(agent or default.agent, user or default.user)

    @classmethod
    def from_file(cls, path: str) -> Script:
        with open(path, encoding="utf-8") as lines:
            return cls(tuple(line.strip() for line in lines if line.strip()))


def _lines(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    return tuple(str(line)[:500] for line in value if isinstance(line, str) and line.strip())[:100]


class EchoConversation:
    def __init__(self, broker: Broker, conversation_id: str, script: Script | None = None) -> None:
        self.pub = Publisher(broker, conversation_id)
        self.script = script or Script()
        self.said: list[tuple[str, str]] = []  # (role, final text)
        self.speech_seconds = 0.0
        self.frames: asyncio.Queue[bytes] = asyncio.Queue(CALLER_QUEUE)
        self.playout: deque[bytes] = deque()
        self.heard = 0  # caller samples seen (conversation time of the caller track)
        self.utterance: list[bytes] = []
        self.start_sample = 0
        self.silence = 0
        self.turn_id: str | None = None
        self.last_partial = 0
        self.turns = 0

    def on_caller_frame(self, frame: dict[str, Any]) -> None:
        data = frame.get("data")
        if isinstance(data, bytes):
            with contextlib.suppress(asyncio.QueueFull):
                self.frames.put_nowait(data)

    async def run(self) -> None:
        sub = self.pub.subscribe_caller_audio(self.on_caller_frame)
        player = asyncio.get_running_loop().create_task(self._play())
        try:
            await sub.ready()
            self.queue_audio(await greeting_audio())
            while True:
                await self._hear(await self.frames.get())
        finally:
            sub.close()
            player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await player

    def queue_audio(self, pcm24k: bytes) -> None:
        pcm24k += b"\0" * (-len(pcm24k) % FRAME_BYTES)
        self.playout.extend(pcm24k[i:i + FRAME_BYTES] for i in range(0, len(pcm24k), FRAME_BYTES))

    async def _play(self) -> None:
        """One 20 ms frame per tick of a steady clock while there is something to say."""
        next_tick = time.monotonic()
        while True:
            if not self.playout:
                await asyncio.sleep(0.02)
                next_tick = time.monotonic()
                continue
            await self.pub.send_agent_audio(self.playout.popleft())
            next_tick += 0.02
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))

    async def _hear(self, data: bytes) -> None:
        samples = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2")
        rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0
        at = self.heard
        self.heard += len(samples)
        if rms >= SPEECH_RMS:
            if self.turn_id is None:
                self.turn_id, self.start_sample, self.utterance, self.last_partial = new_turn_id(), at, [], at
            self.silence = 0
            self.utterance.append(data)
        elif self.turn_id is not None:
            self.silence += len(samples)
            self.utterance.append(data)
        if self.turn_id is None:
            return
        spoken = (self.heard - self.start_sample - self.silence) / 16000
        if self.silence >= PAUSE_S * 16000 or spoken >= MAX_UTTERANCE_S:
            await self._answer(spoken)
        elif self.heard - self.last_partial >= PARTIAL_EVERY_S * 16000:
            self.last_partial = self.heard
            await self.pub.send_transcript("user", f"[speech {spoken:.1f} s]", is_final=False, turn_id=self.turn_id,
                                           start_time=self.start_sample / 16000, end_time=self.heard / 16000, confidence=0.5)

    async def _answer(self, spoken: float) -> None:
        assert self.turn_id is not None
        start, end = self.start_sample / 16000, (self.heard - self.silence) / 16000
        script = self.script
        text = script.user[self.turns] if self.turns < len(script.user) else f"[speech {spoken:.1f} s]"
        await self.pub.send_transcript("user", text, is_final=True, turn_id=self.turn_id, start_time=start, end_time=end,
                                       confidence=1.0, words=word_timings(text, start, end))
        speech = b"".join(self.utterance)
        speech = speech[: len(speech) - self.silence * 2] if self.silence * 2 < len(speech) else speech
        self.turn_id = None
        self.silence = 0
        self.utterance = []
        self.turns += 1
        agent_turn = new_turn_id()
        reply = script.agent[self.turns - 1] if self.turns <= len(script.agent) else f"I heard {spoken:.1f} seconds of speech."
        self.said += [("user", text), ("agent", reply)]
        self.speech_seconds += spoken
        now = self.heard / 16000
        words = reply.split()
        for n in range(1, len(words)):
            await self.pub.send_transcript("agent", " ".join(words[:n]), is_final=False, turn_id=agent_turn,
                                           start_time=now, end_time=now, confidence=1.0)
        await self.pub.send_transcript("agent", reply, is_final=True, turn_id=agent_turn, start_time=now,
                                       end_time=now + spoken, confidence=1.0, words=word_timings(reply, now, now + spoken))
        echoed = resample(np.frombuffer(speech, dtype="<i2").astype(np.int16), 16000, 24000)
        self.queue_audio(echoed.astype("<i2").tobytes())
        await self.pub.send_cost(self.costs())

    def costs(self) -> dict[str, Any]:
        """The REST costs object: made-up prices for the work an STT/LLM/TTS pipeline would have done."""
        characters = sum(len(text) for role, text in self.said if role == "agent")
        breakdown: dict[str, dict[str, Any]] = {
            "stt": {"provider": "echo", "audioSeconds": round(self.speech_seconds, 1),
                    "cost": round(self.speech_seconds * 0.0002, 6)},
            "llm": {"provider": "echo", "inputTokens": 0, "outputTokens": 0, "cost": 0.0},
            "tts": {"provider": "echo", "characters": characters, "cost": round(characters * 0.000012, 6)},
            "telephony": {"provider": "echo", "minutes": 0, "cost": 0.0},
        }
        return {"currency": "USD", "total": round(sum(item["cost"] for item in breakdown.values()), 6),
                "breakdown": breakdown}

    def analysis(self) -> dict[str, Any]:
        """What an analysis step would say about the call, from the turns it had."""
        users = [text for role, text in self.said if role == "user"]
        summary = (f"Echo test call: the caller spoke {len(users)} time(s) ({self.speech_seconds:.1f} s of speech) "
                   "and the agent answered each time.") if users else "Echo test call: the caller did not speak."
        words = [w.strip(".,?!").lower() for text in users for w in text.split() if len(w.strip(".,?!")) > 4]
        topics = sorted(set(words), key=words.index)[:5]
        return {
            "completedAt": now_iso(),
            "sentiment": "neutral",
            "sentimentScore": 0.5,
            "sentimentBreakdown": {"agent": 0.5, "user": 0.5},
            "intent": "echo_test",
            "entities": [],
            "summary": summary,
            "topics": topics,
            "customFields": {"turns": len(users), "speechSeconds": round(self.speech_seconds, 1)},
            "callQualityScore": 5.0 if users else 1.0,
            "agentPerformanceNotes": "Reference echo agent: every caller utterance was answered.",
        }

    async def finish(self) -> None:
        """After the end: the last costs and the analysis (the caller's node stores both)."""
        await self.pub.send_cost(self.costs())
        await self.pub.send_analysis(self.analysis())


def word_timings(text: str, start: float, end: float) -> list[dict[str, Any]]:
    """Words spread evenly over [start, end] (the echo agent has no recogniser to time them)."""
    words = text.split()
    step = (end - start) / max(1, len(words))
    return [{"word": word, "startTime": round(start + i * step, 3), "endTime": round(start + (i + 1) * step, 3),
             "confidence": 1.0} for i, word in enumerate(words)]


async def run_echo_agent(broker: Broker, stop: asyncio.Event, ready: asyncio.Event | None = None, *,
                         script: Script | None = None) -> None:
    """Answer every conversation that starts until `stop` is set; `ready` is set once the agent hears lifecycle events.
    `script` gives the agent's lines when a conversation's metadata has none."""
    tasks: dict[str, asyncio.Task[None]] = {}
    conversations: dict[str, EchoConversation] = {}
    finishing: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()

    def on_lifecycle(event: dict[str, Any]) -> None:
        conversation_id = event.get("conversationId")
        if not isinstance(conversation_id, str):
            return
        if event.get("type") == "started" and conversation_id not in tasks:
            metadata = (event.get("conversation") or {}).get("metadata")
            conversation = EchoConversation(broker, conversation_id, Script.from_metadata(metadata, script))
            conversations[conversation_id] = conversation
            task = loop.create_task(_guarded(conversation.run(), conversation_id))
            tasks[conversation_id] = task
            task.add_done_callback(lambda _t: tasks.pop(conversation_id, None))
        elif event.get("type") == "ended" and conversation_id in tasks:
            tasks[conversation_id].cancel()
            ended = conversations.pop(conversation_id, None)
            if ended is not None:
                done = loop.create_task(_guarded(ended.finish(), conversation_id))
                finishing.add(done)
                done.add_done_callback(finishing.discard)

    sub = broker.subscribe_lifecycle(on_lifecycle)
    try:
        await sub.ready()
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        sub.close()
        for task in list(tasks.values()):
            task.cancel()
        for task in list(tasks.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if finishing:  # analyses being published: let them land
            await asyncio.wait(list(finishing), timeout=5)


async def _guarded(work: Any, conversation_id: str) -> None:
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("echo agent failed on %s", conversation_id)
