from __future__ import annotations

import hashlib
import hmac

import pytest

from pieces_integration.domain.webhook_signature import (
    WebhookSignatureError,
    compute_signature,
    parse_signature_header,
    sign,
    verify,
)

BODY = b'{"id":"evt_1","type":"task_created"}'
SECRET = "whsec_current"
OLD = "whsec_previous"
T = 1_760_000_000


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert compute_signature(SECRET, T, BODY) == expected
    assert sign(BODY, SECRET, timestamp=T) == f"t={T},v1={expected}"


def test_valid_signature_returns_its_timestamp() -> None:
    assert verify(sign(BODY, SECRET, timestamp=T), BODY, [SECRET], now=T + 10) == T


def test_any_of_several_v1_values_may_match_during_rotation() -> None:
    header = sign(BODY, [OLD, SECRET], timestamp=T)
    assert header.count("v1=") == 2
    assert verify(header, BODY, [SECRET], now=T) == T
    assert verify(header, BODY, [OLD], now=T) == T


def test_receiver_may_hold_old_and_new_secret() -> None:
    assert verify(sign(BODY, OLD, timestamp=T), BODY, [SECRET, OLD], now=T) == T


@pytest.mark.parametrize(
    ("header", "body", "secrets", "reason"),
    [
        (sign(BODY, "other", timestamp=T), BODY, [SECRET], "mismatch"),
        (sign(BODY, SECRET, timestamp=T), BODY + b" ", [SECRET], "mismatch"),
        (
            sign(BODY, SECRET, timestamp=T).replace(f"t={T}", f"t={T + 1}"),
            BODY,
            [SECRET],
            "mismatch",
        ),
        (None, BODY, [SECRET], "missing"),
        ("", BODY, [SECRET], "missing"),
        ("v1=" + "a" * 64, BODY, [SECRET], "malformed"),
        (f"t={T}", BODY, [SECRET], "malformed"),
        (f"t=abc,v1={'a' * 64}", BODY, [SECRET], "malformed"),
        (f"t={T},v1=nothex", BODY, [SECRET], "malformed"),
        (f"t={T},t={T},v1={'a' * 64}", BODY, [SECRET], "malformed"),
        (f"t={T},v1={'a' * 64}," + ",".join(["v1=" + "b" * 64] * 9), BODY, [SECRET], "malformed"),
        (sign(BODY, SECRET, timestamp=T), BODY, [], "not_configured"),
        (sign(BODY, SECRET, timestamp=T), BODY, [""], "not_configured"),
    ],
)
def test_rejections_say_why(
    header: str | None, body: bytes, secrets: list[str], reason: str
) -> None:
    with pytest.raises(WebhookSignatureError) as info:
        verify(header, body, secrets, now=T)
    assert info.value.reason == reason


def test_v0_or_unknown_schemes_are_ignored_not_trusted() -> None:
    good = compute_signature(SECRET, T, BODY)
    assert verify(f"t={T},v0=zzz,v1={good}", BODY, [SECRET], now=T) == T
    with pytest.raises(WebhookSignatureError):
        verify(f"t={T},v0={good}", BODY, [SECRET], now=T)


@pytest.mark.parametrize("skew", [301, -301, 10_000])
def test_timestamps_outside_five_minutes_are_stale(skew: int) -> None:
    header = sign(BODY, SECRET, timestamp=T)
    with pytest.raises(WebhookSignatureError) as info:
        verify(header, BODY, [SECRET], now=T + skew)
    assert info.value.reason == "stale_timestamp"


@pytest.mark.parametrize("skew", [300, -300, 0])
def test_timestamps_at_the_edge_of_the_window_pass(skew: int) -> None:
    assert verify(sign(BODY, SECRET, timestamp=T), BODY, [SECRET], now=T + skew) == T


def test_forged_signature_is_rejected_before_the_clock_is_consulted() -> None:
    with pytest.raises(WebhookSignatureError) as info:
        verify(sign(BODY, "forger", timestamp=T), BODY, [SECRET], now=T + 10_000)
    assert info.value.reason == "mismatch"


def test_header_parsing_tolerates_spaces_and_upper_case_hex() -> None:
    digest = compute_signature(SECRET, T, BODY)
    parsed = parse_signature_header(f" t={T} , v1={digest.upper()} ")
    assert parsed.timestamp == T and parsed.signatures == (digest,)


def test_signing_needs_a_secret() -> None:
    with pytest.raises(ValueError):
        sign(BODY, [], timestamp=T)
