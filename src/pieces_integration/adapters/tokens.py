"""JWT bearer tokens (PyJWT): HS256 with a shared secret, or RS256 with a public key / JWKS."""

from __future__ import annotations

import time
from typing import Any

import jwt

from pieces_integration.domain.errors import InvalidInput, Unauthorized
from pieces_integration.domain.model import Role

_LEEWAY_SECONDS = 30


class JwtCodec:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        secret: str | None = None,
        public_key: str | None = None,
        jwks_url: str | None = None,
    ) -> None:
        if not (secret or public_key or jwks_url):
            raise RuntimeError("JwtCodec needs a secret, a public key or a JWKS URL")
        self._issuer = issuer
        self._audience = audience
        self._secret = secret
        self._public_key = public_key
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5) if jwks_url else None

    @property
    def can_issue(self) -> bool:
        return self._secret is not None

    def issue(self, user_id: str, role: Role, *, ttl_seconds: int) -> str:
        if self._secret is None:
            raise RuntimeError("tokens are issued by the identity provider (RS256/JWKS mode)")
        if ttl_seconds <= 0:
            raise InvalidInput("ttl must be positive", field="ttl")
        now = int(time.time())
        claims = {
            "sub": user_id,
            "role": role.value,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_seconds,
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> tuple[str, Role]:
        try:
            if self._jwks is not None:
                key: Any = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = ["RS256"]
            elif self._public_key is not None:
                key, algorithms = self._public_key, ["RS256"]
            else:
                key, algorithms = self._secret, ["HS256"]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 128:
            raise Unauthorized("invalid token: bad subject")
        try:
            role = Role(claims.get("role", Role.USER.value))
        except ValueError:
            raise Unauthorized("invalid token: unknown role") from None
        return subject, role
