"""A minimal MPEG audio frame walker for checking recordings (headers only, no decoding)."""

from __future__ import annotations

from dataclasses import dataclass

_BITRATES_V1_L3 = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
_BITRATES_V2_L3 = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
_RATES = {3: [44100, 48000, 32000], 2: [22050, 24000, 16000], 0: [11025, 12000, 8000]}


@dataclass(frozen=True)
class Mp3Frame:
    offset: int
    length: int
    sample_rate: int
    bitrate_kbps: int
    channel_mode: int  # 0 stereo, 1 joint stereo, 2 dual channel, 3 mono
    samples: int


def mp3_frames(data: bytes) -> list[Mp3Frame]:
    """Every frame from the start to the end; raises ValueError on anything that is not a Layer III frame."""
    frames: list[Mp3Frame] = []
    offset = 0
    if data[:3] == b"ID3":
        size = data[6] << 21 | data[7] << 14 | data[8] << 7 | data[9]
        offset = 10 + size
    while offset < len(data):
        if offset + 4 > len(data):
            raise ValueError(f"truncated header at {offset}")
        b1, b2, b3 = data[offset + 1], data[offset + 2], data[offset + 3]
        if data[offset] != 0xFF or b1 & 0xE0 != 0xE0:
            raise ValueError(f"no frame sync at {offset}")
        version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
        if version == 1 or layer != 1:
            raise ValueError(f"not MPEG Layer III at {offset}")
        bitrate_index, rate_index, padding = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
        if bitrate_index in (0, 15) or rate_index == 3:
            raise ValueError(f"bad bitrate or sample rate index at {offset}")
        rate = _RATES[version][rate_index]
        if version == 3:
            bitrate, samples, length = _BITRATES_V1_L3[bitrate_index], 1152, 144 * _BITRATES_V1_L3[bitrate_index] * 1000 // rate
        else:
            bitrate, samples, length = _BITRATES_V2_L3[bitrate_index], 576, 72 * _BITRATES_V2_L3[bitrate_index] * 1000 // rate
        length += padding
        if offset + length > len(data):
            raise ValueError(f"truncated frame at {offset}")
        frames.append(Mp3Frame(offset, length, rate, bitrate, b3 >> 6, samples))
        offset += length
    return frames


def mp3_duration(data: bytes) -> float:
    return sum(f.samples / f.sample_rate for f in mp3_frames(data))
