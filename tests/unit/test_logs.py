from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Literal

import pytest
import structlog

from pieces_integration.observability.logs import (
    REDACTED,
    configure_logging,
    redact_secrets,
    redact_text,
)


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


def _connect(api_key: str, password: str) -> None:
    session_token = api_key[::-1]  # a local derived from a secret
    raise RuntimeError(
        f"cannot reach postgresql://svc:{password}@db:5432/app ({len(session_token)})"
    )


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.reset_defaults()


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_tracebacks_show_no_local_variables_and_no_credentials(
    fmt: Literal["json", "console"], capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    api_key, password = uuid.uuid4().hex, uuid.uuid4().hex
    configure_logging("INFO", fmt)
    for logger in (structlog.get_logger("test"), logging.getLogger("test.stdlib")):
        try:
            _connect(api_key, password)
        except RuntimeError:
            logger.exception("connect failed")
    out = capsys.readouterr().err
    assert "connect failed" in out
    assert out.count("RuntimeError") >= 2 and "_connect" in out  # the traceback is there
    assert api_key not in out and api_key[::-1] not in out  # no locals
    assert password not in out and REDACTED in out  # the message is redacted
