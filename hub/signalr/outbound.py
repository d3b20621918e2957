"""Per-connection outbound queue of pre-encoded frames.

Every message is encoded once per protocol (`OutgoingMessage`) and the same payload object is queued on
every recipient's queue: `put` is synchronous and never awaits, so fan-out to N connections costs N
appends, not N awaits. One writer per connection drains the queue and writes several frames as one
transport message when more than one is waiting (whole records only, as clients require).

Bounds (voicehub-contract.md section 3, "Slow consumers"):
- droppable frames (live audio) are grouped by a drop key (one per subscription and track); past
  `max_droppable` frames waiting for one key, the oldest is dropped and `on_drop(key, count)` is called;
- everything else is never dropped: past `max_bytes` waiting in total, `put` returns False and the
  connection must be closed (`Close{error, allowReconnect: true}`), the client recovers from history.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable

from hub.signalr.light import LightEvent
from protocol import HubProtocol, TransferFormat
from protocol.messages import HubMessage, is_trackable

Payload = bytes | str
"""A framed message: `str` for text protocols (JSON), `bytes` for binary ones (MessagePack)."""

DEFAULT_MAX_QUEUED_BYTES = 1_000_000
DEFAULT_MAX_DROPPABLE = 25
"""Frames waiting per drop key before the oldest goes: 25 x 20 ms = 500 ms of audio."""
MAX_BATCH_BYTES = 64 * 1024


class OutgoingMessage:
    """One hub message with its encodings cached by protocol name: encode once, send to many."""

    __slots__ = ("_payloads", "message", "trackable")

    def __init__(self, message: HubMessage) -> None:
        self.message = message
        self.trackable = is_trackable(message)
        self._payloads: dict[str, Payload] = {}

    def payload(self, protocol: HubProtocol) -> Payload:
        cached = self._payloads.get(protocol.name)
        if cached is None:
            data = protocol.encode(self.message)
            cached = data.decode("utf-8") if protocol.transfer_format is TransferFormat.TEXT else data
            self._payloads[protocol.name] = cached
        return cached


class Entry:
    __slots__ = ("drop_key", "dropped", "payload", "size", "trackable")

    def __init__(self, payload: Payload, trackable: bool, drop_key: Hashable | None) -> None:
        self.payload = payload
        self.size = len(payload)
        self.trackable = trackable
        self.drop_key = drop_key
        self.dropped = False


class OutboundQueue:
    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_QUEUED_BYTES,
        max_droppable: int = DEFAULT_MAX_DROPPABLE,
        on_drop: Callable[[Hashable, int], None] | None = None,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_droppable = max_droppable
        self.on_drop = on_drop
        self.queued_bytes = 0
        self.dropped_frames = 0
        self._entries: deque[Entry] = deque()
        self._droppable: dict[Hashable, deque[Entry]] = {}
        self._dropped_waiting = 0  # dropped entries still in _entries (skipped by take, compacted when many)
        self._signal = LightEvent()  # set by `wake`, cleared by `wait_signal`
        self.notify: Callable[[], None] | None = None
        self.on_wake: Callable[[], None] | None = None
        """Called by `wake`: a transport that starts its writer task only when there is work (websocket.py)."""
        """Called by `put` instead of waking the writer task, while a transport writes synchronously."""
        self.fast: list[Payload] | None = None
        """While a transport writes synchronously and is writable (`fast_open`): frames for this loop iteration's
        write, kept without per-frame bookkeeping (they are written before the loop runs anything else). Never on
        stateful-reconnect connections (their frames must reach the replay buffer as entries)."""
        self.fast_open = False

    def __len__(self) -> int:
        """Frames waiting (dropped ones excluded)."""
        return len(self._entries) - self._dropped_waiting + (len(self.fast) if self.fast else 0)

    def put(self, payload: Payload, *, trackable: bool, drop_key: Hashable | None = None, force: bool = False) -> bool:
        """Queue a frame without waiting. False: the hard byte limit was hit (nothing was queued)."""
        fast = self.fast
        if fast is not None and (fast or (self.fast_open and not self._entries)):
            fast.append(payload)
            if len(fast) == 1 and self.notify is not None:
                self.notify()
            return True
        if force:
            pass
        elif drop_key is not None:
            waiting = self._droppable.get(drop_key)
            if waiting is None:
                waiting = self._droppable[drop_key] = deque()
            if len(waiting) >= self.max_droppable:
                self._drop_oldest(drop_key, waiting)
        elif self.queued_bytes + len(payload) > self.max_bytes:
            return False
        entry = Entry(payload, trackable, drop_key)
        self._entries.append(entry)
        self.queued_bytes += entry.size
        if drop_key is not None:
            self._droppable[drop_key].append(entry)
        notify = self.notify
        if notify is not None:
            notify()
        else:
            self.wake()
        return True

    def _drop_oldest(self, key: Hashable, waiting: deque[Entry]) -> None:
        oldest = waiting.popleft()
        oldest.dropped = True
        oldest.payload = b""  # the shared payload is not kept alive by a client that stopped reading
        self.queued_bytes -= oldest.size
        self._dropped_waiting += 1
        if self._dropped_waiting > 64 and self._dropped_waiting * 2 > len(self._entries):
            self._entries = deque(entry for entry in self._entries if not entry.dropped)
            self._dropped_waiting = 0
        self.dropped_frames += 1
        if self.on_drop is not None:
            self.on_drop(key, 1)

    def wake(self) -> None:
        """Wake whoever waits in `wait_signal` (new frames, an ack, a close)."""
        self._signal.set()
        if self.on_wake is not None:
            self.on_wake()

    async def wait_signal(self) -> None:
        """Until `put` or `wake` is called (returns at once if that happened since the last call)."""
        await self._signal.wait()
        self._signal.clear()

    def take(self, max_bytes: int = MAX_BATCH_BYTES, *, trackable_allowed: bool = True) -> list[Entry]:
        """Frames for one transport write (at least one if any waits, then up to `max_bytes`)."""
        if self.fast:
            payloads, self.fast = self.fast, []
            return [Entry(payload, False, None) for payload in payloads]
        out: list[Entry] = []
        size = 0
        entries = self._entries
        while entries:
            entry = entries[0]
            if entry.dropped:
                entries.popleft()
                self._dropped_waiting -= 1
                continue
            if out and size + entry.size > max_bytes:
                break
            if entry.trackable and not trackable_allowed:
                break
            entries.popleft()
            if entry.drop_key is not None:
                waiting = self._droppable.get(entry.drop_key)
                if waiting:
                    waiting.popleft()
                    if not waiting:
                        del self._droppable[entry.drop_key]
            self.queued_bytes -= entry.size
            size += entry.size
            out.append(entry)
        return out

    def take_fast(self) -> list[Payload]:
        """The fast frames, for a synchronous write (empty if none)."""
        fast = self.fast
        if not fast:
            return []
        self.fast = []
        return fast

    def disable_fast(self) -> None:
        """Back to entries only (the direct writer detached, or the connection became stateful)."""
        fast, self.fast = self.fast, None
        self.fast_open = False
        if fast:
            self._entries.extendleft(Entry(payload, False, None) for payload in reversed(fast))

    def clear(self) -> None:
        if self.fast:
            self.fast = []
        self._entries.clear()
        self._droppable.clear()
        self.queued_bytes = 0
        self._dropped_waiting = 0



def join_payloads(payloads: list[Payload]) -> Payload:
    if len(payloads) == 1:
        return payloads[0]
    if isinstance(payloads[0], str):
        return "".join(payloads)  # type: ignore[arg-type]
    return b"".join(payloads)  # type: ignore[arg-type]


def as_bytes(payload: Payload) -> bytes:
    return payload.encode("utf-8") if isinstance(payload, str) else payload
