"""Every error response is `application/problem+json` (RFC 9457). Status codes live here."""

from __future__ import annotations

import math
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pieces_integration.domain import errors

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger(__name__)


class PayloadTooLarge(errors.InvalidInput):
    code = "payload_too_large"


_STATUS: list[tuple[type[errors.PiecesIntegrationError], int]] = [
    (PayloadTooLarge, 413),
    (errors.UnsafeEndpoint, 422),
    (errors.InvalidInput, 422),
    (errors.NotFound, 404),
    (errors.ConflictUnresolved, 409),
    (errors.Conflict, 409),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.RateLimited, 429),
    (errors.UpstreamTimeout, 504),
    (errors.PiecesOSUnavailable, 503),
    (errors.AIPlatformError, 502),
    (errors.DependencyUnavailable, 503),
    (errors.UpstreamError, 502),
]

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal server error",
    502: "Upstream error",
    503: "Service unavailable",
    504: "Upstream timeout",
}


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:pieces-integration:problem:{code}" if code else "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extensions,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def title_for(status: int) -> str:
    return _TITLES.get(status, "Error")


def status_for(exc: errors.PiecesIntegrationError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    # bandit B101: narrows a type for mypy; holds by construction, no input reaches it.
    assert isinstance(exc, errors.PiecesIntegrationError)  # nosec B101
    status = status_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        headers["RateLimit-Limit"] = str(exc.limit)
        headers["RateLimit-Remaining"] = str(exc.remaining)
        headers["RateLimit-Reset"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, errors.Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="pieces-integration"'
    extensions = {key: value for key, value in exc.details.items() if key not in ("kind",)}
    if status >= 500:
        log.warning("upstream_or_dependency_error", error=repr(exc), status=status)
    return problem(status, exc.message, code=exc.code, headers=headers or None, **extensions)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    # bandit B101: narrows a type for mypy; holds by construction, no input reaches it.
    assert isinstance(exc, RequestValidationError)  # nosec B101
    problems = [
        {"field": _location(error.get("loc", ())), "message": error.get("msg", "invalid")}
        for error in exc.errors()
    ]
    detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5]) or "invalid request"
    return problem(422, detail, code="invalid_input", errors=problems)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    # bandit B101: narrows a type for mypy; holds by construction, no input reaches it.
    assert isinstance(exc, StarletteHTTPException)  # nosec B101
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeError):
        # FastAPI answers a body that is not UTF-8 with a bare 400; it is invalid input like a
        # JSON syntax error (422), so it is reported the same way, naming the body.
        message = "the body must be JSON encoded as UTF-8"
        return problem(
            422,
            f"body: {message}",
            code="invalid_input",
            field="body",
            errors=[{"field": "body", "message": message}],
        )
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    return problem(exc.status_code, detail, headers=dict(exc.headers or {}) or None)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", path=request.url.path)
    return problem(500, "An unexpected error occurred; it has been logged.", code="internal_error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.PiecesIntegrationError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
