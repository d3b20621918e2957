"""Simulated callers: speech-like audio, the caller library, `python -m hub simulate`, and `serve --demo N`."""
