"""What a bridge agent forwards to its local Pieces OS: these routes and nothing else.

The service can never use a developer's machine as a proxy (issue 13, point 4): a call is
forwarded only when its method and path match one template below (the Pieces OS routes the
adapter uses, pieces-os-api.md), its query keys are known, and its body is under the cap.
`{id}` matches one path segment of letters, digits, `-` and `_` (no dots, no escapes), so
no template can be stretched into another route.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

STREAM = "STREAM"  # a WebSocket the agent opens on the service's behalf
ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/.well-known/health"),
    ("GET", "/.well-known/version"),
    ("POST", "/connect"),
    ("GET", "/user"),
    ("GET", "/assets/identifiers"),
    ("GET", "/assets"),
    ("GET", "/asset/{id}"),
    ("POST", "/assets/create"),
    ("POST", "/asset/update"),
    ("GET", "/format/{id}"),
    ("POST", "/format/update/value"),
    ("POST", "/asset/{id}/tags/disassociate/{id}"),
    ("POST", "/tags/create"),
    ("POST", "/annotation/update"),
    ("POST", "/annotations/create"),
    ("POST", "/assets/{id}/delete"),
    ("GET", "/assets/search"),
    ("POST", "/assets/search"),
    ("GET", "/search/full_text"),
    ("GET", "/search/neural_code"),
    (STREAM, "/assets/stream/identifiers"),
)
QUERY_KEYS = frozenset({"transferables", "transferable", "query"})
HEADERS = frozenset({"application", "content-type"})  # never credentials of the machine
MAX_QUERY_VALUE = 2048
MAX_REQUEST_BODY = 4 * 1024 * 1024  # the largest asset write, with room for its JSON
MAX_RESPONSE_BODY = 512 * 1024 * 1024  # a 10k-asset snapshot is well under this

_SEGMENT = "[A-Za-z0-9_-]{1,128}"


def _compile(template: str) -> re.Pattern[str]:
    parts = [_SEGMENT if part == "{id}" else re.escape(part) for part in template.split("/")]
    return re.compile("/".join(parts))


_COMPILED = tuple((method, _compile(template), template) for method, template in ROUTES)


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str


def route_of(method: str, path: str) -> str | None:
    """The template `method path` matches, or None."""
    for allowed, pattern, template in _COMPILED:
        if allowed == method and pattern.fullmatch(path):
            return template
    return None


def check_call(
    method: str,
    path: str,
    *,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    body_size: int,
    max_body: int = MAX_REQUEST_BODY,
) -> Refusal | None:
    """None when the call may go to Pieces OS, else why not (logged by the agent)."""
    if route_of(method, path) is None:
        return Refusal(f"{method} {path[:200]} is not a Pieces OS route the bridge forwards")
    unknown = sorted(set(params) - QUERY_KEYS)
    if unknown:
        return Refusal(f"query parameter {unknown[0]!r} is not allowed")
    if any(len(value) > MAX_QUERY_VALUE for value in params.values()):
        return Refusal("a query parameter is too long")
    extra = sorted({name.lower() for name in headers} - HEADERS)
    if extra:
        return Refusal(f"header {extra[0]!r} is not forwarded")
    if body_size > max_body:
        return Refusal(f"request body of {body_size} bytes is over the {max_body} byte cap")
    return None
