"""Sort orders of one tenant's conversations in the in-memory store, kept up to date on every change.

`startedAt` is one sorted list. Ended conversations also sit in sorted lists by `endedAt` and by duration
(both fixed once a call ends); conversations still in progress are few and are ordered at query time (an
open call sorts last by `endedAt`, and by its duration so far). A page is read by walking one order in the
requested direction and keeping what the filters accept: no per-request sort of the whole tenant, and the
walk stops at the end of the page whenever the total is known without it.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Iterator

Entry = tuple[float, str]
Keep = Callable[[str, float], bool]


def _remove(items: list[tuple[int, str]], item: tuple[int, str]) -> None:
    pos = bisect.bisect_left(items, item)
    if pos < len(items) and items[pos] == item:
        del items[pos]


class SortOrders:
    def __init__(self) -> None:
        self.by_start: list[tuple[int, str]] = []
        self.by_end: list[tuple[int, str]] = []
        self.by_duration: list[tuple[int, str]] = []
        self.open: dict[str, int] = {}  # in progress: id -> startedAtMs
        self.duration: dict[str, int] = {}  # ended: id -> duration in ms

    def __len__(self) -> int:
        return len(self.by_start)

    def add(self, conversation_id: str, started_ms: int, ended_ms: int | None) -> None:
        bisect.insort(self.by_start, (started_ms, conversation_id))
        if ended_ms is None:
            self.open[conversation_id] = started_ms
        else:
            bisect.insort(self.by_end, (ended_ms, conversation_id))
            bisect.insort(self.by_duration, (max(0, ended_ms - started_ms), conversation_id))
            self.duration[conversation_id] = max(0, ended_ms - started_ms)

    def remove(self, conversation_id: str, started_ms: int, ended_ms: int | None) -> None:
        _remove(self.by_start, (started_ms, conversation_id))
        if ended_ms is None:
            self.open.pop(conversation_id, None)
        else:
            _remove(self.by_end, (ended_ms, conversation_id))
            _remove(self.by_duration, (max(0, ended_ms - started_ms), conversation_id))
            self.duration.pop(conversation_id, None)

    def lasting(self, least_ms: float, now_ms: int) -> set[str]:
        """Ids of the conversations whose duration (so far, for open ones) is at least `least_ms`."""
        pos = bisect.bisect_left(self.by_duration, (math.ceil(least_ms), ""))
        found = {cid for _, cid in itertools.islice(self.by_duration, pos, None)}
        found.update(cid for cid, start in self.open.items() if max(0, now_ms - start) >= least_ms)
        return found

    def lasts(self, conversation_id: str, least_ms: float, now_ms: int) -> bool:
        """Whether this conversation has lasted at least `least_ms` (so far, if still open)."""
        ended = self.duration.get(conversation_id)
        if ended is not None:
            return ended >= least_ms
        return max(0, now_ms - self.open.get(conversation_id, now_ms)) >= least_ms

    def count_lasting(self, least_ms: float, now_ms: int) -> int:
        pos = bisect.bisect_left(self.by_duration, (math.ceil(least_ms), ""))
        return len(self.by_duration) - pos + sum(1 for start in self.open.values() if max(0, now_ms - start) >= least_ms)

    def start_range(self, from_ms: int | None, to_ms: int | None) -> tuple[int, int]:
        """Positions in `by_start` of the conversations started in [from_ms, to_ms] (inclusive)."""
        lo = 0 if from_ms is None else bisect.bisect_left(self.by_start, (from_ms, ""))
        hi = len(self.by_start) if to_ms is None else bisect.bisect_right(self.by_start, (to_ms, "\uffff"))
        return lo, max(lo, hi)

    def walk(self, sort_by: str, desc: bool, now_ms: int, lo: int = 0, hi: int | None = None) -> Iterator[Entry]:
        """(score, id) in the order asked; scores are ms (startedAt, endedAt with open calls at +inf, duration)."""
        if sort_by == "startedAt":
            hi = len(self.by_start) if hi is None else hi
            if desc:
                return (self.by_start[i] for i in range(hi - 1, lo - 1, -1))
            return (self.by_start[i] for i in range(lo, hi))
        if sort_by == "endedAt":
            still_open = [(math.inf, cid) for cid in sorted(self.open)]
            if desc:
                return itertools.chain(reversed(still_open), reversed(self.by_end))
            return itertools.chain(self.by_end, still_open)
        live = sorted((max(0, now_ms - start), cid) for cid, start in self.open.items())
        if desc:
            return heapq.merge(reversed(self.by_duration), reversed(live), reverse=True)
        return heapq.merge(self.by_duration, live)


def read_page(entries: Iterable[Entry], keep: Keep | None, offset: int, size: int,
              known_total: int | None) -> tuple[list[str], int]:
    """The ids at [offset, offset + size) of the kept entries, and how many are kept in all.

    With `known_total` the walk stops once the page is full."""
    ids: list[str] = []
    total = 0
    end = offset + size
    for score, conversation_id in entries:
        if keep is not None and not keep(conversation_id, score):
            continue
        if offset <= total < end:
            ids.append(conversation_id)
        total += 1
        if total >= end and known_total is not None:
            return ids, known_total
    return ids, total
