"""The OpenAPI document's error responses: every API operation documents its problem+json answers.

Error responses are produced centrally (errors.py), not by each route, so they are documented
centrally too: when the document is first generated, every operation under `/api/` gets the
problem responses it can produce (and FastAPI's default `application/json` 422 is replaced by
the problem+json one the app really sends). It edits the generated document, so routers
included after `install_problem_docs` are covered as well.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from pieces_integration.entrypoints.api.errors import PROBLEM_JSON

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; extension members name the field or limit at fault.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "urn:pieces-integration:problem:<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "field": {"type": "string", "description": "The input at fault, when there is one"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    "additionalProperties": True,
}

_RATE_HEADERS: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds until a request would be allowed",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "RateLimit-Limit": {"description": "Bucket capacity", "schema": {"type": "integer"}},
    "RateLimit-Remaining": {"description": "Requests left now", "schema": {"type": "integer"}},
    "RateLimit-Reset": {"description": "Seconds until refilled", "schema": {"type": "integer"}},
}


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
    }
    if headers:
        response["headers"] = headers
    return response


PROBLEM_RESPONSES: dict[int, dict[str, Any]] = {
    401: _problem(
        "No credential, or an invalid, expired or revoked one",
        {
            "WWW-Authenticate": {
                "description": "The authentication scheme to use",
                "required": True,
                "schema": {"type": "string"},
            }
        },
    ),
    403: _problem("The caller's role or ownership does not allow this"),
    404: _problem("Not found, or owned by someone else (existence is not revealed)"),
    409: _problem("Version conflict (If-Match) or a state that forbids the change"),
    413: _problem("The request body exceeds the configured limit"),
    422: _problem("Invalid input; `field` or `errors` name what is wrong"),
    429: _problem("Rate limit exceeded", _RATE_HEADERS),
    503: _problem(
        "A dependency is unavailable or busy (the database under a long write, Pieces OS, "
        "AIWFE); the body names it. Safe to retry"
    ),
}

_WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
_HTTP_METHODS = frozenset({"get", "head", "options", "trace", *_WRITE_METHODS})
_DEFAULT_422 = "#/components/schemas/HTTPValidationError"


def problem_codes(method: str) -> list[int]:
    """The problem responses an API operation can produce."""
    codes = [401, 403, 404, 422, 429, 503]
    if method.lower() in _WRITE_METHODS:
        codes += [409, 413]
    return sorted(codes)


def _is_default_422(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref") == _DEFAULT_422)


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Add the problem responses to every operation under `/api/`, in place."""
    for path, operations in document.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            if method not in _HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if "422" in responses and _is_default_422(responses["422"]):
                del responses["422"]  # FastAPI's own shape; the app answers with a problem
            for code in problem_codes(method):
                # A route's own declaration of a status wins.
                responses.setdefault(str(code), PROBLEM_RESPONSES[code])
    document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    return document


def install_problem_docs(app: FastAPI) -> None:
    """Document problem responses when the OpenAPI document is built (once, then cached)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
