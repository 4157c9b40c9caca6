"""JWT bearer tokens (PyJWT): HS256 with a shared secret, or RS256 with a public key / JWKS."""

from __future__ import annotations

import time
from typing import Any

import anyio
import anyio.to_thread
import jwt

from pieces_integration.domain.auth import parse_tenant
from pieces_integration.domain.errors import DependencyUnavailable, InvalidInput, Unauthorized
from pieces_integration.domain.model import Role
from pieces_integration.ports.tokens import VerifiedToken

_LEEWAY_SECONDS = 30
_JWKS_TIMEOUT_SECONDS = 5.0
_JWKS_LIFESPAN_SECONDS = 300.0


class _JwksKeys:
    """Signing keys from a JWKS URL, never fetched on the event loop.

    PyJWKClient fetches with blocking urllib, so a fetch runs in a worker thread, bounded
    in total by `timeout`. Its key set cache (`lifespan`, and its cooldown before an unknown
    `kid` forces a refetch) is read on the loop, so a cached key costs no thread hop.
    """

    def __init__(self, url: str, *, timeout: float, lifespan: float) -> None:
        self._client = jwt.PyJWKClient(url, lifespan=lifespan, timeout=timeout)
        self._timeout = timeout

    def _cached(self, kid: str) -> jwt.PyJWK | None:
        cache = self._client.jwk_set_cache
        jwk_set = cache.get() if cache is not None else None
        if jwk_set is None:
            return None
        return next(
            (k for k in jwk_set.keys if k.key_id == kid and k.public_key_use in ("sig", None)),
            None,
        )

    async def key_for(self, token: str) -> Any:
        kid = jwt.get_unverified_header(token).get("kid")
        if not isinstance(kid, str) or not kid:
            raise jwt.InvalidTokenError("the token names no key (kid)")
        key = self._cached(kid)
        if key is None:
            try:
                with anyio.fail_after(self._timeout):
                    key = await anyio.to_thread.run_sync(
                        self._client.get_signing_key, kid, abandon_on_cancel=True
                    )
            except (TimeoutError, jwt.PyJWKClientConnectionError) as exc:
                raise DependencyUnavailable(
                    "the identity provider's keys (JWKS) could not be fetched", upstream="jwks"
                ) from exc
        return key.key


class JwtCodec:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        secret: str | None = None,
        public_key: str | None = None,
        jwks_url: str | None = None,
        jwks_timeout: float = _JWKS_TIMEOUT_SECONDS,
        tenant_claim: str | None = None,
    ) -> None:
        """`tenant_claim`: the claim naming the user's tenant (None: tokens name none)."""
        if not (secret or public_key or jwks_url):
            raise RuntimeError("JwtCodec needs a secret, a public key or a JWKS URL")
        self._issuer = issuer
        self._audience = audience
        self._secret = secret
        self._public_key = public_key
        self._tenant_claim = tenant_claim
        self._jwks = (
            _JwksKeys(jwks_url, timeout=jwks_timeout, lifespan=_JWKS_LIFESPAN_SECONDS)
            if jwks_url
            else None
        )

    @property
    def can_issue(self) -> bool:
        return self._secret is not None

    @property
    def reads_tenant(self) -> bool:
        return self._tenant_claim is not None

    def issue(
        self, user_id: str, role: Role, *, ttl_seconds: int, tenant: str | None = None
    ) -> str:
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
        if tenant is not None and self._tenant_claim is not None:
            claims[self._tenant_claim] = tenant
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def claimed_subject(self, token: str) -> str | None:
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return None
        subject = claims.get("sub")
        return subject if isinstance(subject, str) and 0 < len(subject) <= 128 else None

    async def verify(self, token: str) -> VerifiedToken:
        try:
            if self._jwks is not None:
                key: Any = await self._jwks.key_for(token)
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
        issued = claims.get("iat")
        issued_at = float(issued) if isinstance(issued, int | float) else None
        tenant = (
            parse_tenant(claims.get(self._tenant_claim), claim=self._tenant_claim)
            if self._tenant_claim is not None
            else None
        )
        return VerifiedToken(subject, role, issued_at, tenant)
