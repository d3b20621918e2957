"""Call recordings: timeline spooling during the call, MP3 encoding (lameenc) at the end."""

from __future__ import annotations

from hub.recording.recorder import RECORDING_BITRATE_KBPS, RECORDING_RATE, Recorder, RecordingResult, recording_path

__all__ = ["RECORDING_BITRATE_KBPS", "RECORDING_RATE", "Recorder", "RecordingResult", "recording_path"]
