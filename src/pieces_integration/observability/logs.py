"""Structured logging: JSON in production, readable in development; secrets redacted.

Every log line carries the request id bound by the API middleware (structlog contextvars).
Standard-library loggers (uvicorn, sqlalchemy) are routed through the same processors.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import ExcInfo

_SECRET_KEY = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|authorization|cookie|credential|private[_-]?key)",
    re.IGNORECASE,
)
# Credentials inside URLs (scheme://user:password@host) and bearer tokens inside free text.
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+(?P<tail>@)")
_BEARER = re.compile(r"(?P<head>bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
_API_KEY = re.compile(r"\bpk_[A-Za-z0-9_-]{8,}")
REDACTED = "[redacted]"


def redact_text(text: str) -> str:
    text = _URL_PASSWORD.sub(r"\g<head>" + REDACTED + r"\g<tail>", text)
    text = _BEARER.sub(r"\g<head>" + REDACTED, text)
    return _API_KEY.sub(REDACTED, text)


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > 5:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            key: REDACTED if _SECRET_KEY.search(str(key)) else _redact(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(item, depth + 1) for item in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-looking keys and credentials inside strings."""
    for key in list(event_dict):
        if key == "event":
            event_dict[key] = _redact(event_dict[key])
        elif _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact(event_dict[key])
    return event_dict


def _exception_formatter(colors: bool) -> Any:
    """The console renderer's traceback printer, without local variables, redacted.

    structlog's default (Rich) shows every frame's locals, which printed a local `api_key`;
    `show_locals=False` keeps the frames and code lines but no values. The text then goes
    through `redact_text`, like the rest of the line, for credentials in exception messages.
    """
    base: Any = structlog.dev.plain_traceback
    if importlib.util.find_spec("rich") is not None:  # a dependency, but optional to structlog
        base = structlog.dev.RichTracebackFormatter(
            color_system="truecolor" if colors else None, show_locals=False
        )

    def render(sio: TextIO, exc_info: ExcInfo) -> None:
        buffer = io.StringIO()
        base(buffer, exc_info)
        sio.write(redact_text(buffer.getvalue()))

    return render


def configure_logging(level: str, fmt: Literal["json", "console"]) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Any
    if fmt == "json":
        # The plain-text traceback (no locals; `dict_tracebacks` would show them by default),
        # rendered before redaction so credentials in exception messages are masked too.
        shared += [structlog.processors.format_exc_info, redact_secrets]
        renderer = structlog.processors.JSONRenderer()
    else:
        colors = sys.stderr.isatty()
        shared.append(redact_secrets)
        renderer = structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=_exception_formatter(colors)
        )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Our middleware logs each request with its id; uvicorn's access line would repeat it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # Drivers log every statement and packet at debug; our own debug output stays readable.
    for chatty in ("aiosqlite", "httpcore", "httpx", "websockets", "asyncio", "hpack"):
        logging.getLogger(chatty).setLevel(max(logging.INFO, root.level))
