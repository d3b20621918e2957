"""The interface shared by the JSON and MessagePack hub protocols."""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum

from protocol.messages import HubMessage

DEFAULT_MAX_MESSAGE_SIZE = 32 * 1024
"""ASP.NET Core's `MaximumReceiveMessageSize` default (HubOptions): 32 KB per parsed hub message."""


class TransferFormat(Enum):
    TEXT = "Text"
    BINARY = "Binary"


class MessageReader(ABC):
    """Incremental decoder: feed bytes as they come, get whole messages out."""

    @abstractmethod
    def feed(self, data: bytes) -> list[HubMessage]:
        """Decode every whole message in the buffered data; keep the rest. Raises ProtocolError."""

    @property
    @abstractmethod
    def buffered(self) -> int:
        """Bytes held for an incomplete message."""


class HubProtocol(ABC):
    name: str
    version: int = 2
    transfer_format: TransferFormat

    @abstractmethod
    def encode(self, message: HubMessage) -> bytes:
        """One framed message (JSON record with 0x1E, or VarInt-prefixed MessagePack array)."""

    @abstractmethod
    def reader(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> MessageReader:
        """A fresh incremental reader for one connection."""

    def decode_all(self, data: bytes, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> list[HubMessage]:
        """Decode a buffer that must hold only whole messages (what one transport message carries)."""
        reader = self.reader(max_message_size)
        messages = reader.feed(data)
        if reader.buffered:
            from protocol.errors import ProtocolError

            raise ProtocolError("Incomplete message.")
        return messages
