"""The handshake (HubProtocol.md, "Overview"): the client's first record, always JSON + 0x1E.

`{"protocol": "json"|"messagepack", "version": 1|2}`. The server answers `{}` + 0x1E, or
`{"error": "..."}` + 0x1E and closes. Texts are those of HubConnectionContext.HandshakeAsync. Clients send
version 2 only when stateful reconnect was negotiated; servers accept any version up to 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from protocol.codec import HubProtocol, TransferFormat
from protocol.errors import HandshakeError
from protocol.json_codec import RECORD_SEPARATOR, encode_record

HANDSHAKE_OK = b"{}" + RECORD_SEPARATOR


@dataclass(frozen=True, slots=True)
class HandshakeRequest:
    protocol: str
    version: int


def handshake_error(message: str) -> HandshakeError:
    return HandshakeError(message, encode_record({"error": message}))


def parse_handshake(record: bytes) -> HandshakeRequest:
    """Parse the handshake record (without its separator)."""
    try:
        obj = orjson.loads(record)
    except orjson.JSONDecodeError:
        raise handshake_error("Handshake request is not valid JSON.") from None
    if not isinstance(obj, dict):
        raise handshake_error("Handshake request is not a JSON object.")
    protocol = obj.get("protocol")
    version = obj.get("version")
    if not isinstance(protocol, str):
        raise handshake_error("Missing required property 'protocol'.")
    if isinstance(version, bool) or not isinstance(version, int):
        raise handshake_error("Missing required property 'version'.")
    return HandshakeRequest(protocol, version)


def select_protocol(
    request: HandshakeRequest, protocols: Mapping[str, HubProtocol], transport_format: TransferFormat
) -> HubProtocol:
    """Pick the hub protocol for a handshake, or raise HandshakeError with the .NET text."""
    protocol = protocols.get(request.protocol)
    if protocol is None:
        raise handshake_error(f"The protocol '{request.protocol}' is not supported.")
    if request.version > protocol.version or request.version < 0:
        raise handshake_error(f"The server does not support version {request.version} of the '{request.protocol}' protocol.")
    if protocol.transfer_format is TransferFormat.BINARY and transport_format is TransferFormat.TEXT:
        raise handshake_error(
            f"Cannot use the '{request.protocol}' protocol on the current transport. "
            f"The transport does not support '{protocol.transfer_format.value}' transfer format."
        )
    return protocol
