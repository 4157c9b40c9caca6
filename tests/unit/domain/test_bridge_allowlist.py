"""Only the Pieces OS routes the adapter uses pass a bridge (issue 13, point 4)."""

from __future__ import annotations

import pytest

from pieces_integration.domain import bridge_allowlist as allow


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/.well-known/health"),
        ("GET", "/assets"),
        ("GET", "/asset/0b6c1d3e-aaaa-bbbb-cccc-1234567890ab"),
        ("POST", "/asset/abc/tags/disassociate/def"),
        ("POST", "/assets/abc-1/delete"),
        ("POST", "/format/update/value"),
        ("GET", "/search/neural_code"),
        (allow.STREAM, "/assets/stream/identifiers"),
    ],
)
def test_the_adapters_routes_pass(method: str, path: str) -> None:
    assert allow.route_of(method, path) is not None
    assert allow.check_call(method, path, params={}, headers={}, body_size=0) is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin"),
        ("DELETE", "/assets"),
        ("GET", "/asset/../user"),
        ("GET", "/asset/a%2F..%2Fuser"),
        ("GET", "/asset/a/b"),
        ("GET", "/asset/"),
        ("GET", "/assets/"),
        ("GET", "//evil.example/assets"),
        ("GET", "http://169.254.169.254/latest/meta-data"),
        ("POST", "/.well-known/health"),
        (allow.STREAM, "/assets"),
        ("GET", "/assets/stream/identifiers"),
    ],
)
def test_anything_else_is_refused(method: str, path: str) -> None:
    refusal = allow.check_call(method, path, params={}, headers={}, body_size=0)
    assert refusal is not None and "not a Pieces OS route" in refusal.reason


def test_unknown_query_keys_headers_and_big_bodies_are_refused() -> None:
    def check(**kw: object) -> str | None:
        args: dict[str, object] = {"params": {}, "headers": {}, "body_size": 0, **kw}
        refusal = allow.check_call("GET", "/assets", **args)  # type: ignore[arg-type]
        return refusal.reason if refusal else None

    assert "query parameter 'url'" in (check(params={"url": "http://x"}) or "")
    assert "too long" in (check(params={"query": "q" * 5000}) or "")
    assert "header 'authorization'" in (check(headers={"Authorization": "x"}) or "")
    assert "cap" in (check(body_size=allow.MAX_REQUEST_BODY + 1) or "")
    assert check(params={"transferables": "true"}, headers={"application": "a"}) is None
