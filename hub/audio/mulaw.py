"""G.711 mu-law encode and decode through precomputed tables.

Encoding follows ITU-T G.711 (the classic Sun/CCITT reference algorithm): bias 0x84, clip at 32635,
8 segments of 16 steps, bits inverted on the wire. Decoding returns the middle of each step, so the
round-trip error is at most half a step: (|x| + 132) / 32 for |x| <= 32635.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hub.audio.pcm import Int16Array

BIAS = 0x84
CLIP = 32635


def _encode_scalar_table() -> npt.NDArray[np.uint8]:
    x = np.arange(-32768, 32768, dtype=np.int32)
    sign = np.where(x < 0, 0x80, 0).astype(np.int32)
    magnitude = np.minimum(np.abs(x), CLIP) + BIAS
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    codes = ~(sign | (exponent << 4) | mantissa) & 0xFF
    # Index the table by the int16 bit pattern read as uint16: reorder from -32768..32767.
    table = np.empty(65536, dtype=np.uint8)
    table[x.astype(np.uint16)] = codes.astype(np.uint8)
    return table


def _decode_table() -> Int16Array:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


ENCODE_TABLE = _encode_scalar_table()
DECODE_TABLE = _decode_table()
ENCODE_TABLE.flags.writeable = False
DECODE_TABLE.flags.writeable = False


def encode(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    return ENCODE_TABLE[samples.view(np.uint16)]


def decode(codes: npt.NDArray[np.uint8]) -> Int16Array:
    return DECODE_TABLE[codes]


def encode_bytes(samples: npt.NDArray[np.int16]) -> bytes:
    return ENCODE_TABLE[samples.view(np.uint16)].tobytes()


def decode_bytes(data: bytes | bytearray | memoryview) -> Int16Array:
    return DECODE_TABLE[np.frombuffer(data, dtype=np.uint8)]
