"""MessagePack payloads of the broker: maps with camelCase keys as given, bytes (audio `data`) as `bin`."""

from __future__ import annotations

from typing import Any

import msgpack


class PayloadInvalid(ValueError):
    """A payload from Redis is not a MessagePack map."""


def encode(message: dict[str, Any]) -> bytes:
    packed: bytes = msgpack.packb(message, use_bin_type=True)
    return packed


def decode(payload: bytes) -> dict[str, Any]:
    try:
        value = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as exc:
        raise PayloadInvalid(f"not MessagePack: {exc}") from exc
    if not isinstance(value, dict):
        raise PayloadInvalid(f"expected a map, got {type(value).__name__}")
    return value


def encode_without_seq(event: dict[str, Any]) -> bytes:
    """The event as a map that still lacks its last pair, `"seq": <n>`, which the publish script appends.

    The map header already counts the `seq` pair, and the key "seq" is written too; the script only adds
    the packed integer, so Lua never re-encodes (and never alters) the rest of the event.
    """
    body = {k: v for k, v in event.items() if k != "seq"}
    packer = msgpack.Packer(use_bin_type=True)
    parts = [packer.pack_map_header(len(body) + 1)]
    for key, value in body.items():
        parts.append(packer.pack(key))
        parts.append(packer.pack(value))
    parts.append(packer.pack("seq"))
    return b"".join(parts)
