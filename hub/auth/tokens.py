"""Short-lived JWTs (HS256 only): claims sub, tid, scp (space-separated), exp, iat, optional conv and iss.

Time claims are checked here against an injectable clock, so expiry is testable without sleeping; PyJWT
checks the signature and refuses every algorithm but HS256 (no `none`, no RS/HS confusion).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import jwt

from hub.auth.principal import AuthError, Principal
from hub.store.timefmt import utcnow

ALGORITHM = "HS256"


class TokenService:
    def __init__(
        self, secret: str, issuer: str | None = "voicehub", *, leeway_seconds: int = 0, now: Callable[[], datetime] = utcnow
    ) -> None:
        if not secret:
            raise ValueError("a JWT secret is required")
        self._secret = secret
        self._issuer = issuer
        self._leeway = leeway_seconds
        self._now = now

    def issue(self, principal: Principal, ttl_seconds: int) -> str:
        now = int(self._now().timestamp())
        claims: dict[str, Any] = {
            "sub": principal.subject,
            "tid": principal.tenant_id,
            "scp": " ".join(sorted(principal.scopes)),
            "iat": now,
            "nbf": now,
            "exp": now + int(ttl_seconds),
        }
        if self._issuer:
            claims["iss"] = self._issuer
        if principal.conversation_id:
            claims["conv"] = principal.conversation_id
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError("invalid_token", "The token is malformed.") from exc
        if header.get("alg") != ALGORITHM:
            raise AuthError("invalid_token", f"Token algorithm {header.get('alg')!r} is not accepted.")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_iss": bool(self._issuer),
                         "require": ["sub", "tid", "exp", "iat"]},
            )
        except jwt.InvalidSignatureError as exc:
            raise AuthError("invalid_token", "The token signature is not valid.") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("invalid_token", f"The token is not valid: {exc}.") from exc
        self._check_times(claims)
        scp = claims.get("scp", "")
        if not isinstance(scp, str) or not isinstance(claims["sub"], str) or not isinstance(claims["tid"], str):
            raise AuthError("invalid_token", "The token claims have the wrong types.")
        conv = claims.get("conv")
        if conv is not None and not isinstance(conv, str):
            raise AuthError("invalid_token", "The conv claim must be a string.")
        return Principal(claims["sub"], claims["tid"], frozenset(scp.split()), conv, "jwt")

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._now().timestamp()
        for name in ("exp", "iat", "nbf"):
            if name in claims and (isinstance(claims[name], bool) or not isinstance(claims[name], int | float)):
                raise AuthError("invalid_token", f"The {name} claim must be a number.")
        if now >= claims["exp"] + self._leeway:
            raise AuthError("expired_token", "The token has expired.")
        if "nbf" in claims and now + self._leeway < claims["nbf"]:
            raise AuthError("invalid_token", "The token is not valid yet.")
        if now + self._leeway < claims["iat"]:
            raise AuthError("invalid_token", "The token was issued in the future.")
