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


MAX_SHARED_PRINCIPALS = 4096
"""Distinct verified tokens, and identities, kept for sharing; each table starts over when full."""


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
        self._principals: dict[tuple[str, str, str, str | None], Principal] = {}
        self._verified: dict[str, tuple[Principal, dict[str, Any]]] = {}  # token -> its principal and time claims

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
        known = self._verified.get(token)
        if known is not None:  # the same bytes verified before: only the clock can have changed the answer
            principal, times = known
            self._check_times(times)
            return principal
        principal, times = self._verify(token)
        if len(self._verified) >= MAX_SHARED_PRINCIPALS:
            self._verified.clear()
        self._verified[token] = (principal, times)
        return principal

    def _verify(self, token: str) -> tuple[Principal, dict[str, Any]]:
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
        times: dict[str, Any] = {name: claims[name] for name in ("exp", "iat", "nbf") if name in claims}
        return self._principal(claims["sub"], claims["tid"], scp, conv), times

    def _principal(self, subject: str, tenant_id: str, scp: str, conv: str | None) -> Principal:
        """Equal identities share one (immutable) Principal: a dashboard or a test rig opens many connections
        with one token, and each connection keeps its principal for its whole life."""
        key = (subject, tenant_id, scp, conv)
        principal = self._principals.get(key)
        if principal is None:
            if len(self._principals) >= MAX_SHARED_PRINCIPALS:
                self._principals.clear()
            principal = self._principals[key] = Principal(subject, tenant_id, frozenset(scp.split()), conv, "jwt")
        return principal

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
