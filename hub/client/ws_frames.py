"""Splitting a WebSocket server's byte stream into frames by hand (RFC 6455 section 5.2), for the client's fast path.

Used by hub.client.ws_transport once the upgrade is done and no extension was negotiated. Data frames are checked
(unmasked, no reserved bits, known opcode, continuation rules, the message size limit) and reassembled into
messages; control frames are passed on whole and raw for websockets' sans-I/O protocol to handle. Bytes of an
incomplete frame are kept as a list of reads and joined once the frame is complete (no quadratic copying of large
messages).
"""

from __future__ import annotations

from collections.abc import Callable

from websockets.frames import CloseCode

Deliver = Callable[[bytes, bool], bool]  # (payload, is_text) of a whole message; False: stop, the connection closes
Control = Callable[[bytes], bool]  # one whole control frame as received; False: stop
Fail = Callable[[int, str], None]  # (close code, reason): fail the connection
_CONTROL = frozenset((0x8, 0x9, 0xA))


class FrameSplitter:
    def __init__(self, max_size: int, deliver: Deliver, control: Control, fail: Fail) -> None:
        self.max_size = max_size
        self._deliver = deliver
        self._control = control
        self._fail = fail
        self._chunks: list[bytes] = []  # received bytes of an incomplete frame
        self._chunked = 0
        self._need = 2  # bytes needed in _chunks before parsing can move on
        self._fragments: list[bytes] = []  # a fragmented message being reassembled
        self._fragment_size = 0
        self._fragment_text = False

    def take_pending(self) -> bytes:
        """The bytes of an incomplete frame (from its first byte), forgetting them and any partial message."""
        pending = b"".join(self._chunks)
        self.reset()
        return pending

    def reset(self) -> None:
        self._chunks, self._chunked, self._need = [], 0, 2
        self._fragments, self._fragment_size = [], 0

    def feed(self, data: bytes) -> bytes:
        """Parse what was received. When a callback says stop, returns the bytes after that frame (a frame boundary,
        for the sans-I/O protocol to read on from); otherwise b""."""
        if self._chunks:
            self._chunks.append(data)
            self._chunked += len(data)
            if self._chunked < self._need:
                return b""
            data = b"".join(self._chunks)
            self._chunks, self._chunked = [], 0
        end = len(data)
        pos = 0
        while end - pos >= 2:
            head = data[pos]
            length = data[pos + 1]
            if length & 0x80:
                return self._failed(CloseCode.PROTOCOL_ERROR, "incorrect masking")
            if head & 0x70:
                return self._failed(CloseCode.PROTOCOL_ERROR, "reserved bits must be 0")
            start = pos + 2
            if length == 126:
                start = pos + 4
                if start > end:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
            elif length == 127:
                start = pos + 10
                if start > end:
                    break
                length = int.from_bytes(data[pos + 2:start], "big")
            opcode = head & 0x0F
            fin = head & 0x80
            if opcode in _CONTROL:
                if length > 125 or not fin:
                    return self._failed(CloseCode.PROTOCOL_ERROR, "invalid control frame")
            elif opcode > 2:
                return self._failed(CloseCode.PROTOCOL_ERROR, "invalid opcode")
            elif length > self.max_size - (self._fragment_size if opcode == 0 else 0):
                return self._failed(CloseCode.MESSAGE_TOO_BIG, f"message over {self.max_size} bytes")
            stop = start + length
            if stop > end:
                break
            if opcode in _CONTROL:
                going = self._control(data[pos:stop])
            elif opcode == 0:
                if not self._fragments:
                    return self._failed(CloseCode.PROTOCOL_ERROR, "unexpected continuation frame")
                self._fragments.append(data[start:stop])
                self._fragment_size += length
                going = True
                if fin:
                    payload = b"".join(self._fragments)
                    self._fragments, self._fragment_size = [], 0
                    going = self._deliver(payload, self._fragment_text)
            elif self._fragments:
                return self._failed(CloseCode.PROTOCOL_ERROR, "expected a continuation frame")
            elif fin:
                going = self._deliver(data[start:stop], opcode == 1)
            else:
                self._fragments, self._fragment_size, self._fragment_text = [data[start:stop]], length, opcode == 1
                going = True
            pos = stop
            if not going:
                self.reset()
                return data[pos:]
        if pos < end:
            rest = data[pos:] if pos else data
            self._chunks, self._chunked = [rest], len(rest)
            self._need = _needed(rest)
        return b""

    def _failed(self, code: int, reason: str) -> bytes:
        self.reset()
        self._fail(code, reason)
        return b""


def _needed(rest: bytes) -> int:
    """How many bytes the frame starting `rest` takes, as far as its header tells (at least its header)."""
    if len(rest) < 2:
        return 2
    length = rest[1] & 0x7F
    if length == 126:
        return 4 if len(rest) < 4 else 4 + ((rest[2] << 8) | rest[3])
    if length == 127:
        return 10 if len(rest) < 10 else 10 + int.from_bytes(rest[2:10], "big")
    return 2 + length
