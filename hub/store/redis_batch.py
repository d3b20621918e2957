"""Writing many new conversations to the Redis store in few commands (imports, the listing benchmark).

`_write_indices` writes through anything with the pipeline's methods below. For new records only adds
happen, so a batch gathers them per key and sends one command per key (MSET, ZADD with many members,
BITFIELD with many SETs, HSET with many fields): the same writes in the same layout, in far fewer commands.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Protocol

from redis.asyncio.client import Pipeline


class IndexWriter(Protocol):
    def set(self, name: str, value: bytes) -> object: ...

    def zadd(self, name: str, mapping: Mapping[str, float]) -> object: ...

    def zrem(self, name: str, *values: str) -> object: ...

    def setbit(self, name: str, offset: int, value: int) -> object: ...

    def hset(self, name: str, key: str, value: str) -> object: ...

    def hdel(self, name: str, *keys: str) -> object: ...


class NewRecordsBatch:
    """An IndexWriter for new records: gathers the writes, `flush` queues one command per key."""

    def __init__(self) -> None:
        self._strings: dict[str, bytes] = {}
        self._zsets: defaultdict[str, dict[str, float]] = defaultdict(dict)
        self._bits: defaultdict[str, list[tuple[int, int]]] = defaultdict(list)
        self._hashes: defaultdict[str, dict[str, str]] = defaultdict(dict)

    def set(self, name: str, value: bytes) -> object:
        self._strings[name] = value
        return self

    def zadd(self, name: str, mapping: Mapping[str, float]) -> object:
        self._zsets[name].update(mapping)
        return self

    def zrem(self, name: str, *values: str) -> object:
        raise ValueError("a batch of new records removes nothing")

    def setbit(self, name: str, offset: int, value: int) -> object:
        self._bits[name].append((offset, value))
        return self

    def hset(self, name: str, key: str, value: str) -> object:
        self._hashes[name][key] = value
        return self

    def hdel(self, name: str, *keys: str) -> object:
        raise ValueError("a batch of new records removes nothing")

    def flush(self, pipe: Pipeline) -> None:
        if self._strings:
            pipe.mset(self._strings)
        for name, members in self._zsets.items():
            pipe.zadd(name, members)
        for name, bits in self._bits.items():
            args: list[str | int] = []
            for offset, value in bits:
                args += ["SET", "u1", offset, value]
            pipe.execute_command("BITFIELD", name, *args)
        for name, fields in self._hashes.items():
            pipe.execute_command("HSET", name, *(part for field in fields.items() for part in field))
