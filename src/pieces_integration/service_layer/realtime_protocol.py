"""The WebSocket wire vocabulary beyond events: close codes, limits, control messages.

Close codes:
    1000 normal            1008 origin not allowed      1009 message too big
    1011 internal error    1012 server restarting (after a `reconnect` message)
    4001 unauthorized      4008 slow consumer           4010 idle timeout
    4029 too many failed sign-ins (wait `Retry-After`-like seconds named in the reason)

Server messages beyond spec 6.2: `subscribed` (ack with the cursor), `unsubscribed`,
`reset`, `heartbeat` (sent after `heartbeat_interval` of silence, so browsers can spot a
dead connection), `reconnect` (before a graceful shutdown). Every logged event carries
`id` and `timestamp` beside `type` and `payload`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class CloseCode(IntEnum):
    NORMAL = 1000
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    UNAUTHORIZED = 4001
    SLOW_CONSUMER = 4008
    IDLE_TIMEOUT = 4010
    TOO_MANY_ATTEMPTS = 4029


@dataclass(frozen=True, slots=True)
class RealtimeLimits:
    send_queue_messages: int = 1000
    send_queue_bytes: int = 8 * 1024 * 1024
    max_message_bytes: int = 64 * 1024
    heartbeat_interval: float = 25.0
    idle_timeout: float = 120.0  # no client message (e.g. `ping`) for this long closes it
    reconcile_interval: float = 5.0  # how often heads are compared with the log
    # A slow consumer's close frame waits behind what its socket already holds; give the
    # client this long to read up to it before the transport is dropped (its queue is freed
    # at once, so the wait costs no memory).
    close_timeout: float = 5.0
    drain_timeout: float = 3.0


def control(kind: str, payload: dict[str, Any]) -> str:
    return json.dumps({"type": kind, "payload": payload}, separators=(",", ":"))


def error_message(code: str, message: str, details: dict[str, Any] | None = None) -> str:
    return control("error", {"code": code, "message": message, "details": details or {}})
