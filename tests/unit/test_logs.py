from __future__ import annotations

from pieces_integration.observability.logs import REDACTED, redact_secrets, redact_text


def test_secret_keys_and_embedded_credentials_are_masked() -> None:
    event = {
        "event": "connecting to postgresql://svc:hunter2@db:5432/app",
        "api_key": "pk_live_abcdefgh12345",
        "headers": {"Authorization": "Bearer eyJhbGciOi.x.y", "accept": "json"},
        "note": "sent Bearer abc.def.ghi and pk_abcdefghijkl",
        "count": 3,
    }
    out = redact_secrets(None, "info", dict(event))
    assert "hunter2" not in out["event"] and REDACTED in out["event"]
    assert out["api_key"] == REDACTED
    assert out["headers"] == {"Authorization": REDACTED, "accept": "json"}
    assert "abc.def.ghi" not in out["note"] and "pk_abcdefghijkl" not in out["note"]
    assert out["count"] == 3


def test_plain_text_is_left_alone() -> None:
    assert redact_text("synced 3 assets for alice") == "synced 3 assets for alice"
