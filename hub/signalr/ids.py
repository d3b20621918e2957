from __future__ import annotations

import base64
import secrets


def new_id() -> str:
    """16 random bytes from a CSPRNG, base64url without padding (22 chars), as .NET makes connection ids."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode("ascii")
