"""Negotiate (TransportProtocols.md, "POST [endpoint-base]/negotiate request").

Version selection follows HttpConnectionDispatcher.ProcessNegotiate: absent means 0, not an integer is an
error, below the minimum is an error, above the server's maximum (1) is clamped. The response is always
HTTP 200 with JSON, even when it carries `{"error": ...}`; property order is as .NET writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import orjson

SERVER_MAX_NEGOTIATE_VERSION = 1


class Transport(Enum):
    WEB_SOCKETS = "WebSockets"
    SERVER_SENT_EVENTS = "ServerSentEvents"
    LONG_POLLING = "LongPolling"


TRANSFER_FORMATS: dict[Transport, list[str]] = {
    Transport.WEB_SOCKETS: ["Text", "Binary"],
    Transport.SERVER_SENT_EVENTS: ["Text"],
    Transport.LONG_POLLING: ["Text", "Binary"],
}

ALL_TRANSPORTS = (Transport.WEB_SOCKETS, Transport.SERVER_SENT_EVENTS, Transport.LONG_POLLING)


class NegotiateVersionError(ValueError):
    pass


def select_version(raw: str | None, minimum: int = 0) -> int:
    """The negotiate version for the `negotiateVersion` query value, or NegotiateVersionError(text)."""
    if raw is None:
        version = 0
    else:
        try:
            version = int(raw)
        except ValueError:
            raise NegotiateVersionError("The client requested a non-integer protocol version.") from None
    if version < minimum:
        raise NegotiateVersionError(f"The client requested version '{version}', but the server does not support this version.")
    return min(version, SERVER_MAX_NEGOTIATE_VERSION)


@dataclass(frozen=True, slots=True)
class NegotiateResponse:
    connection_id: str
    connection_token: str
    version: int
    transports: Sequence[Transport] = ALL_TRANSPORTS
    use_stateful_reconnect: bool = False

    def to_json(self) -> bytes:
        body: dict[str, object] = {}
        if self.use_stateful_reconnect:
            body["useStatefulReconnect"] = True
        body["negotiateVersion"] = self.version
        body["connectionId"] = self.connection_id
        if self.version > 0:
            body["connectionToken"] = self.connection_token
        body["availableTransports"] = [
            {"transport": t.value, "transferFormats": TRANSFER_FORMATS[t]} for t in self.transports
        ]
        return orjson.dumps(body)


def negotiate_error(message: str) -> bytes:
    return orjson.dumps({"error": message})


def redirect_response(url: str, access_token: str | None = None) -> bytes:
    body: dict[str, str] = {"url": url}
    if access_token is not None:
        body["accessToken"] = access_token
    return orjson.dumps(body)
