"""`python -m hub watch --url http://... --key vsnp_... [--conversation conv_...]`: watch calls from a terminal.

Prints final transcript turns, DTMF, supervisor actions, the start and end of calls and, about once a second,
the caller's and the agent's level in dBFS. With `--conversation` it follows that call (snapshot first) and
exits when it ends; without, it follows every call of the key's tenant that is in progress or starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

from hub.client.signalr import HubError
from hub.client.voice import VoiceMonitor, fetch_token

LEVEL_EVERY_SECONDS = 1.0


class Printer:
    """Turns monitor events into lines: one per final turn, dtmf, control and lifecycle event; levels throttled."""

    def __init__(self, out: TextIO = sys.stdout, *, partials: bool = False, levels: bool = True) -> None:
        self.out = out
        self.partials = partials
        self.levels = levels
        self._last_level: dict[str, float] = {}

    def line(self, conversation_id: Any, text: str) -> None:
        stamp = datetime.now().strftime("%H:%M:%S")
        print(f"{stamp} {conversation_id} {text}", file=self.out, flush=True)

    def turn(self, turn: dict[str, Any]) -> None:
        if turn.get("isFinal") or self.partials:
            marker = "" if turn.get("isFinal") else " (partial)"
            self.line(turn.get("conversationId"), f"{turn.get('role')}{marker}: {turn.get('text')}")

    def snapshot(self, snapshot: dict[str, Any]) -> None:
        conversation = snapshot.get("conversation") or {}
        self.line(conversation.get("id"), f"watching ({conversation.get('status')}, agent {conversation.get('agentId')}, "
                                          f"{len(snapshot.get('transcript') or [])} turns so far, seq {snapshot.get('seq')})")
        for turn in snapshot.get("transcript") or []:
            self.turn(turn)

    def level(self, level: dict[str, Any]) -> None:
        conversation_id = str(level.get("conversationId"))
        now = time.monotonic()
        if not self.levels or now - self._last_level.get(conversation_id, 0.0) < LEVEL_EVERY_SECONDS:
            return
        self._last_level[conversation_id] = now
        self.line(conversation_id, f"level caller {level.get('caller'):>6} dBFS  agent {level.get('agent'):>6} dBFS")

    def started(self, conversation: dict[str, Any]) -> None:
        self.line(conversation.get("id"), f"started: agent {conversation.get('agentId')}, {conversation.get('channel')}, "
                                          f"{conversation.get('direction')}")

    def ended(self, ended: dict[str, Any]) -> None:
        self.line(ended.get("conversationId"), f"ended: {ended.get('status')} ({ended.get('reason')}) after "
                                               f"{ended.get('durationSeconds')} s")

    def dtmf(self, event: dict[str, Any]) -> None:
        self.line(event.get("conversationId"), f"dtmf {event.get('digit')}")

    def control(self, event: dict[str, Any]) -> None:
        self.line(event.get("conversationId"), f"{event.get('action')} by {event.get('by')}")

    def gap(self, event: dict[str, Any]) -> None:
        self.line(event.get("conversationId"), f"gap: seq {event.get('fromSeq')}..{event.get('toSeq')} "
                                               f"({event.get('reason')})")


async def watch(url: str, token: str, conversation_id: str | None, printer: Printer, *,
                seconds: float | None = None, msgpack: bool = False) -> int:
    """Follow one conversation until it ends, or every conversation until `seconds` pass (None: until cancelled)."""
    monitor = await VoiceMonitor.connect(url, token, msgpack=msgpack)
    finished = asyncio.Event()
    watched: set[str] = set()
    tasks: set[asyncio.Task[Any]] = set()

    def on(name: str, handler: Callable[[dict[str, Any]], None]) -> None:
        monitor.hub.on(name, lambda args: handler(args[0]) if args and isinstance(args[0], dict) else None)

    async def follow(cid: str) -> None:
        if cid in watched:
            return
        watched.add(cid)
        try:
            printer.snapshot(await monitor.subscribe(cid, {"partials": printer.partials}))
        except HubError as exc:
            printer.line(cid, f"cannot watch: {exc}")

    def on_started(conversation: dict[str, Any]) -> None:
        printer.started(conversation)
        task = asyncio.get_running_loop().create_task(follow(str(conversation.get("id"))))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def on_ended(ended: dict[str, Any]) -> None:
        printer.ended(ended)
        if ended.get("conversationId") == conversation_id:
            finished.set()

    on("TranscriptTurn", printer.turn)
    on("AudioLevel", printer.level)
    on("Dtmf", printer.dtmf)
    on("Control", printer.control)
    on("Gap", printer.gap)
    on("ConversationEnded", on_ended)
    try:
        if conversation_id is not None:
            snapshot = await monitor.subscribe(conversation_id, {"partials": printer.partials})
            printer.snapshot(snapshot)
            if (snapshot.get("conversation") or {}).get("status") != "in_progress":
                return 0
        else:
            on("ConversationStarted", on_started)
            current = await monitor.subscribe_all({}, {"transcript": False})
            if not current:
                print("no call in progress; waiting for one (Ctrl-C to stop)", file=printer.out, flush=True)
            for conversation in current:
                await follow(str(conversation["id"]))
        closed = asyncio.ensure_future(monitor.hub.closed.wait())
        done = asyncio.ensure_future(finished.wait())
        try:
            await asyncio.wait({closed, done}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            done.cancel()
        if monitor.hub.closed.is_set() and not finished.is_set():
            print(f"the hub closed the connection: {monitor.hub.close_error or 'no reason given'}", file=sys.stderr)
            return 1
        return 0
    finally:
        for task in list(tasks):
            task.cancel()
        await monitor.close()


async def run(args: argparse.Namespace) -> int:
    if not args.key:
        print("error: --key (or VOICEHUB_KEY) is required: an API key with monitor:read "
              "(serve prints a development key at start)", file=sys.stderr)
        return 2
    try:
        token = await fetch_token(args.url, args.key, scopes=["monitor:read"], conversation_id=args.conversation)
        return await watch(args.url, token, args.conversation, Printer(partials=args.partials, levels=not args.no_levels),
                           seconds=args.seconds)
    except (HubError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def add_arguments(parser: argparse.ArgumentParser, env: Callable[[str, str | None], str | None]) -> None:
    parser.add_argument("--url", default=env("url", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=env("key", None), help="an API key with monitor:read")
    parser.add_argument("--conversation", help="follow this conversation (conv_...) until it ends")
    parser.add_argument("--partials", action="store_true", help="also print partial turns")
    parser.add_argument("--no-levels", action="store_true", help="do not print audio levels")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")


def watch_main(args: argparse.Namespace) -> int:
    logging.getLogger().setLevel(logging.WARNING)  # the terminal is for the call, not for HTTP request logs
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run(args))
    return 130
