"""Session tokens: HS256 JWTs, validated statelessly with the server's signing key.

Claims: ``app`` (app id), ``exp``/``iat`` (unix seconds), ``jti`` (unique id),
``scope`` and, for an app of an apps file, ``kid`` (the API key it was issued for: a
revoked key's tokens are refused). Any worker holding the same key accepts any worker's
tokens. Single use (one connection per token, by default) is enforced through the
server's shared store (:mod:`avatarkit.server.shared`): per process, or in Redis across
workers and machines.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from avatarkit.errors import AvatarKitError, ErrorCode

SCOPE = "motion:stream"
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class TokenClaims:
    app_id: str
    expire_at: float
    token_id: str
    key_id: str = ""  # "" for the one-app default key


class TokenSigner:
    def __init__(self, key: bytes, app_id: str, max_ttl_s: float = 24 * 3600.0) -> None:
        self._key = key
        self.app_id = app_id
        self.max_ttl_s = max_ttl_s

    def issue(
        self,
        expire_at: float,
        now: float | None = None,
        *,
        app_id: str | None = None,
        key_id: str = "",
        max_ttl_s: float | None = None,
    ) -> str:
        """A token valid until ``expire_at``; refuses a time in the past or beyond the max TTL
        (the server's, or the app's ``max_ttl_s`` when smaller)."""
        now = time.time() if now is None else now
        cap = self.max_ttl_s if max_ttl_s is None else min(max_ttl_s, self.max_ttl_s)
        if not expire_at > now:
            raise AvatarKitError(ErrorCode.INVALID_REQUEST, "expireAt must be in the future")
        if expire_at > now + cap:
            ahead = f"{cap / 3600:g} h" if cap >= 3600 else f"{cap:g} s"
            raise AvatarKitError(
                ErrorCode.INVALID_REQUEST, f"expireAt must be at most {ahead} ahead"
            )
        claims: dict[str, object] = {
            "app": self.app_id if app_id is None else app_id,
            "exp": int(expire_at),
            "iat": int(now),
            "jti": uuid.uuid4().hex,
            "scope": SCOPE,
        }
        if key_id:
            claims["kid"] = key_id
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def verify(self, token: str) -> TokenClaims:
        """The claims of a valid token; raises ``sessionTokenInvalid``/``sessionTokenExpired``.

        The caller checks the claims' app id against the one the client presented.
        """
        if not token:
            raise AvatarKitError(ErrorCode.SESSION_TOKEN_INVALID, "empty token")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                options={"require": ["exp", "jti", "app", "scope"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AvatarKitError(
                ErrorCode.SESSION_TOKEN_EXPIRED, "the token's expireAt has passed"
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise AvatarKitError(
                ErrorCode.SESSION_TOKEN_INVALID, str(exc) or "malformed token"
            ) from exc
        if claims.get("scope") != SCOPE:
            raise AvatarKitError(
                ErrorCode.SESSION_TOKEN_INVALID, "token scope does not allow streaming"
            )
        return TokenClaims(
            str(claims["app"]),
            float(claims["exp"]),
            str(claims["jti"]),
            str(claims.get("kid", "")),
        )
