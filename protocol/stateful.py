"""Stateful reconnect bookkeeping (HubProtocol.md, "Stateful reconnect"; .NET MessageBuffer).

Trackable messages (Invocation, StreamItem, Completion, StreamInvocation, CancelInvocation) are numbered
from 1 per direction. The sender keeps what it sent until the peer acks it; after a reconnect each side
sends `Sequence{first unacked id}` and replays. The receiver drops what it already processed.
"""

from __future__ import annotations

from collections import deque

from protocol.errors import ProtocolError

DEFAULT_BUFFER_SIZE = 100_000
"""`HubOptions.StatefulReconnectBufferSize`: bytes of unacked messages kept per direction."""


class ReplayBuffer:
    """Outgoing side: numbered, encoded messages kept until acked."""

    def __init__(self, limit_bytes: int = DEFAULT_BUFFER_SIZE) -> None:
        self.limit_bytes = limit_bytes
        self.next_id = 1
        self.buffered_bytes = 0
        self._items: deque[tuple[int, bytes | str]] = deque()

    @property
    def full(self) -> bool:
        return self.buffered_bytes >= self.limit_bytes

    def add(self, data: bytes | str) -> int:
        sequence_id = self.next_id
        self.next_id += 1
        self._items.append((sequence_id, data))
        self.buffered_bytes += len(data)
        return sequence_id

    def ack(self, sequence_id: int) -> None:
        items = self._items
        while items and items[0][0] <= sequence_id:
            self.buffered_bytes -= len(items.popleft()[1])

    def first_unacked(self) -> int:
        return self._items[0][0] if self._items else self.next_id

    def unacked(self) -> list[bytes | str]:
        return [data for _, data in self._items]


class InboundSequence:
    """Incoming side: which trackable messages are new, and what to ack."""

    def __init__(self) -> None:
        self.processed = 0
        self._next = 1
        self.acked = 0

    def accept(self) -> bool:
        """Number the next trackable message; True if it was not processed before."""
        sequence_id = self._next
        self._next += 1
        if sequence_id <= self.processed:
            return False
        self.processed = sequence_id
        return True

    def reset(self, sequence_id: int) -> None:
        if sequence_id > self.processed + 1:
            raise ProtocolError("Sequence ID greater than amount of messages we've received.")
        self._next = sequence_id

    def ack_due(self) -> int | None:
        if self.processed > self.acked:
            self.acked = self.processed
            return self.processed
        return None
