"""Tenants (issue 20): the claim's value, the principal's tenant bucket, the tighter limit."""

from __future__ import annotations

import pytest

from pieces_integration.domain.auth import Principal, parse_tenant
from pieces_integration.domain.errors import Unauthorized
from pieces_integration.domain.model import Role
from pieces_integration.domain.rate_limit import Decision, tightest


def test_a_tenant_claim_is_a_short_printable_string_or_absent() -> None:
    assert parse_tenant("org_42", claim="org_id") == "org_42"
    assert parse_tenant(None, claim="org_id") is None
    assert parse_tenant("x" * 128, claim="org_id") == "x" * 128


@pytest.mark.parametrize("value", ["", "x" * 129, "a b", "tab\there", "nl\n", 42, ["a"], {}])
def test_anything_else_is_refused_naming_the_claim(value: object) -> None:
    with pytest.raises(Unauthorized, match="'org_id'"):
        parse_tenant(value, claim="org_id")


def test_principals_with_a_tenant_share_its_bucket_except_services() -> None:
    assert Principal("a", Role.USER, "jwt").tenant_rate_limit_key is None
    assert Principal("a", Role.USER, "jwt", tenant="t1").tenant_rate_limit_key == "tenant:t1"
    assert Principal("a", Role.ADMIN, "api_key", tenant="t1").tenant_rate_limit_key == "tenant:t1"
    assert Principal("a", Role.SERVICE, "api_key", tenant="t1").tenant_rate_limit_key is None


def _d(allowed: bool, remaining: int, reset: float = 1.0, retry: float = 0.0) -> Decision:
    return Decision(allowed, 10, remaining, reset, retry)


def test_the_tighter_decision_is_a_refusal_else_the_fewest_left() -> None:
    assert tightest([_d(True, 5), _d(True, 2)]) == _d(True, 2)
    assert tightest([_d(True, 2, reset=3.0), _d(True, 2, reset=9.0)]) == _d(True, 2, reset=9.0)
    assert tightest([_d(True, 0), _d(False, 0, retry=4.0)]) == _d(False, 0, retry=4.0)
    assert tightest([_d(False, 0, retry=1.0), _d(False, 0, retry=6.0)]).retry_after == 6.0
    with pytest.raises(ValueError):
        tightest([])
