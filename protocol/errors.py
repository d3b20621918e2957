"""Protocol errors say whose fault a problem is and what the I/O layer should answer.

`ProtocolError` is the peer's fault (malformed bytes, a message that breaks the rules): the connection
answers with a hub `Close` carrying `close_text` and ends. `HandshakeError` carries the exact handshake
response bytes to send before closing. Any other exception raised from this package is a bug.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """The remote peer broke the protocol. `close_text` is what goes into the Close message's error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def close_text(self) -> str:
        # .NET wraps an InvalidDataException from the protocol reader in the generic close text.
        return f"Connection closed with an error. InvalidDataException: {self.message}"


class MessageTooLarge(ProtocolError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The maximum message size of {limit}B was exceeded. The message size can be configured in AddHubOptions."
        )
        self.limit = limit


class HandshakeError(Exception):
    """The handshake failed; send `response` (a JSON handshake error record), then close."""

    def __init__(self, message: str, response: bytes) -> None:
        super().__init__(message)
        self.message = message
        self.response = response
