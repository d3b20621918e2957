"""`python -m hub simulate --url http://... --key vsnp_... --calls N [--duration S]` with a progress display."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time

from hub.client.signalr import HubError
from hub.client.voice import fetch_token
from hub.simulate.callers import CallResult, simulate_calls


class ProgressDisplay:
    """One status line, redrawn at most 4 times a second (a plain log line per change without a TTY)."""

    def __init__(self, calls: int) -> None:
        self.results: dict[int, CallResult] = {}
        self.calls = calls
        self.tty = sys.stdout.isatty()
        self._last = 0.0
        self._last_line = ""

    def update(self, index: int, result: CallResult) -> None:
        self.results[index] = result
        now = time.monotonic()
        if now - self._last < (0.25 if self.tty else 2.0) and result.ended is None and result.error is None:
            return
        self._last = now
        line = self.line()
        if self.tty:
            print("\r" + line.ljust(100), end="", flush=True)
        elif line != self._last_line:
            print(line, flush=True)
        self._last_line = line

    def line(self) -> str:
        values = self.results.values()
        done = sum(1 for r in values if r.ended is not None)
        failed = sum(1 for r in values if r.error is not None)
        frames = sum(r.frames_sent for r in values)
        agent = sum(r.agent_audio_bytes for r in values) / 48000  # seconds of 24 kHz PCM16
        turns = sum(r.final_turns for r in values)
        return (f"calls {len(self.results)}/{self.calls} live, {done} ended, {failed} failed | caller audio "
                f"{frames * 0.02:.0f} s | agent audio {agent:.0f} s | final turns {turns}")


async def run(args: argparse.Namespace) -> int:
    if not args.key:
        print("error: --key (or VOICEHUB_KEY) is required: an API key with voice:session "
              "(serve prints a development key at start)", file=sys.stderr)
        return 2
    try:
        token = await fetch_token(args.url, args.key, scopes=["voice:session"])
    except (HubError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    display = ProgressDisplay(args.calls)
    results = await simulate_calls(args.url, token, args.calls, duration=args.duration, agent_id=args.agent_id,
                                   progress=display.update)
    if display.tty:
        print()
    for result in results:
        status = f"error: {result.error}" if result.error else f"ended ({(result.ended or {}).get('status')})"
        print(f"{result.conversation_id or '-'}: {result.frames_sent} frames sent, "
              f"{result.agent_audio_bytes / 48000:.1f} s agent audio, {result.final_turns} final turns, {status}")
    return 1 if any(r.error for r in results) else 0


def simulate_main(args: argparse.Namespace) -> int:
    logging.getLogger().setLevel(logging.WARNING)  # the progress line, not one log line per HTTP request
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130
