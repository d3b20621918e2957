"""The REST API (voicehub-contract.md section 5): conversations, API keys, tokens, recordings, openapi.json."""

from __future__ import annotations

from hub.rest.app import rest_endpoints, rest_routes
from hub.rest.ratelimit import RateLimitSettings, RatePolicy
from hub.rest.recordings import recording_file_path
from hub.rest.services import OnDelete, RestServices

__all__ = ["OnDelete", "RateLimitSettings", "RatePolicy", "RestServices", "recording_file_path", "rest_endpoints", "rest_routes"]
