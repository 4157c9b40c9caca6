"""Errors the service raises, grouped by what the caller can do about them.

    PiecesIntegrationError
    ├── NotFound                 the thing does not exist (or is not yours)
    ├── InvalidInput             the request is wrong; fix it and retry
    │   └── UnsafeEndpoint       a URL points outside the allowed address ranges
    ├── Conflict                 the state changed under you (version, duplicate)
    │   └── ConflictUnresolved   a sync conflict needs a person to decide
    ├── Unauthorized             no or bad credentials
    │   └── AccountDisabled      good credentials of a disabled account
    ├── Forbidden                credentials fine, action not allowed
    ├── RateLimited              slow down; retry after `retry_after` seconds
    └── UpstreamError            a system we depend on failed
        ├── PiecesOSUnavailable
        ├── AIPlatformError
        ├── UpstreamTimeout
        └── DependencyUnavailable  our own database/cache/vector store

HTTP status codes live only in `entrypoints/api/errors.py`.
"""

from __future__ import annotations

from typing import Any


class PiecesIntegrationError(Exception):
    """Base of every error this service raises on purpose."""

    code: str = "internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, details={self.details!r})"


class NotFound(PiecesIntegrationError):
    code = "not_found"

    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(
            f"{kind} {identifier!r} not found", details={"kind": kind, "id": identifier}
        )
        self.kind = kind
        self.identifier = identifier


class InvalidInput(PiecesIntegrationError):
    code = "invalid_input"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        if field is not None:
            details["field"] = field
        super().__init__(message, details=details)
        self.field = field


class UnsafeEndpoint(InvalidInput):
    code = "unsafe_endpoint"


class Conflict(PiecesIntegrationError):
    code = "conflict"


class ConflictUnresolved(Conflict):
    code = "conflict_unresolved"


class Unauthorized(PiecesIntegrationError):
    code = "unauthorized"


class AccountDisabled(Unauthorized):
    """The credential is genuine but its account is disabled (not a guess: no lockout)."""

    code = "account_disabled"

    def __init__(self, user_id: str) -> None:
        super().__init__(
            "this account is disabled; an admin can re-enable it", details={"user_id": user_id}
        )


class Forbidden(PiecesIntegrationError):
    code = "forbidden"


class RateLimited(PiecesIntegrationError):
    code = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        limit: int,
        remaining: int = 0,
        scope: str | None = None,  # which bucket refused ("user", "tenant"), where several
    ) -> None:
        details: dict[str, Any] = {"retry_after": retry_after, "limit": limit}
        if scope is not None:
            details["scope"] = scope
        super().__init__(message, details=details)
        self.retry_after = retry_after
        self.limit = limit
        self.remaining = remaining


class UpstreamError(PiecesIntegrationError):
    code = "upstream_error"

    def __init__(self, message: str, *, upstream: str, **details: Any) -> None:
        details["upstream"] = upstream
        super().__init__(message, details=details)
        self.upstream = upstream


class PiecesOSUnavailable(UpstreamError):
    code = "pieces_os_unavailable"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message, upstream="pieces_os", **details)


class AIPlatformError(UpstreamError):
    code = "aiwfe_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message, upstream="aiwfe", **details)


class UpstreamTimeout(UpstreamError):
    code = "upstream_timeout"


class DependencyUnavailable(UpstreamError):
    code = "dependency_unavailable"
