"""The per-user Pieces OS connection state machine and its user-facing messages (spec 8.4).

    disconnected ──connect──▶ connecting ──succeeded──▶ connected
         ▲   ▲                  │    ▲                    │
         │   └──attempt_failed──┘    └──retry─────────────┤ lost(kind)
         │      (attempts left)                           ▼
         │                                          disconnected (retrying)
         │   connecting ──attempt_failed (no attempts left)──▶ connection_failed
         └──────────── user disconnect (from any state) ◀──── manual retry ─▶ connecting

Pure: it decides and describes; the adapter owns timers and I/O and feeds it outcomes.
Every change returns a `ConnectionStateChanged` event that the caller publishes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from pieces_integration.domain.backoff import exponential_backoff

DEFAULT_MAX_ATTEMPTS = 10
DEFAULT_BASE_DELAY = 1.0
DEFAULT_MAX_DELAY = 60.0


# The Pieces OS versions the official CLI accepts (reference §1): 12.0.0 <= version < 13.0.0.
COMPATIBLE_MIN = (12, 0, 0)
COMPATIBLE_MAX = (13, 0, 0)
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)([-.]\S+)?$")


def is_compatible(version: str) -> bool | None:
    """min <= version < max; None when it cannot be told ("debug" builds, odd strings)."""
    match = _VERSION.match(version.strip())
    if match is None:
        return None
    numbers = (int(match[1]), int(match[2]), int(match[3]))
    return COMPATIBLE_MIN <= numbers < COMPATIBLE_MAX


class ConnectionState(StrEnum):
    CONNECTED = "connected"
    CONNECTING = "connecting"
    DISCONNECTED = "disconnected"
    CONNECTION_FAILED = "connection_failed"


class FailureKind(StrEnum):
    NOT_RUNNING = "not_running"
    NETWORK = "network"
    AUTHENTICATION = "authentication"
    SERVICE_UNAVAILABLE = "service_unavailable"
    # TLS (issue 20): the server answered, but its certificate cannot be trusted. Retrying
    # the same thing cannot help, so these give up at once, each saying what to change.
    TLS_UNTRUSTED = "tls_untrusted"
    TLS_EXPIRED = "tls_expired"
    TLS_HOSTNAME = "tls_hostname_mismatch"


# Failures that need someone to change something before a retry can succeed.
GIVE_UP_AT_ONCE = frozenset(
    {
        FailureKind.AUTHENTICATION,
        FailureKind.TLS_UNTRUSTED,
        FailureKind.TLS_EXPIRED,
        FailureKind.TLS_HOSTNAME,
    }
)


@dataclass(frozen=True, slots=True)
class UserAction:
    id: str
    label: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class UserMessage:
    title: str
    message: str
    actions: tuple[UserAction, ...]


PIECES_DOWNLOAD_URL = "https://pieces.app/"
# Actions that several failures offer: one spelling of each id and label.
RETRY_CONNECTION = UserAction("retry_connection", "Retry Connection")
CONTACT_SUPPORT = UserAction("contact_support", "Contact Support")
CONTINUE_WITHOUT_PIECES = UserAction("continue_without_pieces", "Continue without Pieces")

MESSAGES: dict[FailureKind, UserMessage] = {
    FailureKind.NOT_RUNNING: UserMessage(
        title="Pieces OS Not Running",
        message=(
            "Could not connect to your local Pieces OS. Please ensure Pieces OS is running on "
            "your machine to enable context synchronization and enhanced developer features."
        ),
        actions=(
            UserAction("download_pieces_os", "Download Pieces OS", PIECES_DOWNLOAD_URL),
            UserAction("check_pieces_os_running", "Check if Pieces OS is running"),
            RETRY_CONNECTION,
            CONTINUE_WITHOUT_PIECES,
        ),
    ),
    FailureKind.NETWORK: UserMessage(
        title="Network Connectivity Issues",
        message=(
            "Unable to reach Pieces OS due to network connectivity. Checking your network "
            "connection and firewall settings may resolve this issue."
        ),
        actions=(
            RETRY_CONNECTION,
            UserAction("check_network_settings", "Check Network Settings"),
            UserAction("work_offline", "Work Offline"),
        ),
    ),
    FailureKind.AUTHENTICATION: UserMessage(
        title="Authentication Failures",
        message=(
            "Authentication with Pieces OS failed. Please check your Pieces credentials or "
            "re-authorize the connection."
        ),
        actions=(
            UserAction("reauthorize_connection", "Re-authorize Connection"),
            UserAction("check_pieces_login", "Check Pieces Login Status"),
            CONTACT_SUPPORT,
        ),
    ),
    FailureKind.SERVICE_UNAVAILABLE: UserMessage(
        title="Service Unavailable",
        message=(
            "Pieces integration service is temporarily unavailable. Core AIWFE functionality "
            "remains available."
        ),
        actions=(
            UserAction("retry_later", "Retry in a few moments"),
            UserAction("check_system_status", "Check System Status"),
            CONTINUE_WITHOUT_PIECES,
        ),
    ),
    FailureKind.TLS_UNTRUSTED: UserMessage(
        title="Pieces OS Certificate Not Trusted",
        message=(
            "Pieces OS answered over TLS with a certificate signed by an authority this "
            "service does not trust. If Pieces OS uses your own or your company's CA, set "
            "pieces.ca_file (PIECES_INTEGRATION_PIECES__CA_FILE) to that CA's PEM file and "
            "restart the service, then retry the connection."
        ),
        actions=(
            UserAction("configure_ca_file", "Configure a trusted CA (pieces.ca_file)"),
            RETRY_CONNECTION,
            CONTACT_SUPPORT,
        ),
    ),
    FailureKind.TLS_EXPIRED: UserMessage(
        title="Pieces OS Certificate Expired",
        message=(
            "The TLS certificate Pieces OS presented has expired or is not valid yet. Renew "
            "the certificate where Pieces OS is served (and check that this machine's clock is "
            "right), then retry the connection."
        ),
        actions=(
            UserAction("renew_certificate", "Renew the Pieces OS certificate"),
            UserAction("check_system_clock", "Check the system clock"),
            RETRY_CONNECTION,
        ),
    ),
    FailureKind.TLS_HOSTNAME: UserMessage(
        title="Pieces OS Certificate Does Not Match",
        message=(
            "The TLS certificate Pieces OS presented is not valid for the address you "
            "connected to. Connect with a host name the certificate names (for example "
            "localhost instead of an IP address), or reissue the certificate for this "
            "address, then retry the connection."
        ),
        actions=(
            UserAction("check_pieces_url", "Check the Pieces OS address"),
            RETRY_CONNECTION,
            CONTACT_SUPPORT,
        ),
    ),
}


def message_for(kind: FailureKind) -> UserMessage:
    return MESSAGES[kind]


def backoff_delay(
    attempt: int, *, base: float = DEFAULT_BASE_DELAY, cap: float = DEFAULT_MAX_DELAY
) -> float:
    """Delay before reconnect attempt `attempt` (1-based): 1, 2, 4, ... capped at 60 s.

    Without jitter: the delay is shown to the user ("retrying in 4 s"); the stream loop
    spreads the actual wait."""
    return exponential_backoff(attempt, base=base, cap=cap)


@dataclass(frozen=True, slots=True)
class ConnectionStateChanged:
    """Published on every transition; carries what the UI shows."""

    user_id: str
    previous: ConnectionState
    current: ConnectionState
    failure: FailureKind | None
    message: UserMessage | None
    attempt: int
    max_attempts: int
    retry_in: float | None
    detail: str | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class InvalidTransition(RuntimeError):
    """A caller fed the machine an outcome that cannot happen in its current state."""


@dataclass(slots=True)
class ConnectionStateMachine:
    user_id: str
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    state: ConnectionState = ConnectionState.DISCONNECTED
    failure: FailureKind | None = None
    attempts: int = 0
    detail: str | None = None

    @property
    def message(self) -> UserMessage | None:
        return MESSAGES[self.failure] if self.failure is not None else None

    @property
    def retrying(self) -> bool:
        """True while automatic reconnection is still scheduled."""
        return self.state is ConnectionState.DISCONNECTED and self.failure is not None

    def _change(
        self,
        current: ConnectionState,
        *,
        failure: FailureKind | None,
        retry_in: float | None = None,
        detail: str | None = None,
    ) -> ConnectionStateChanged:
        previous = self.state
        self.state = current
        self.failure = failure
        self.detail = detail
        return ConnectionStateChanged(
            user_id=self.user_id,
            previous=previous,
            current=current,
            failure=failure,
            message=MESSAGES[failure] if failure is not None else None,
            attempt=self.attempts,
            max_attempts=self.max_attempts,
            retry_in=retry_in,
            detail=detail,
        )

    def start_attempt(self) -> ConnectionStateChanged:
        """Begin a connection attempt (first connect, scheduled retry)."""
        if self.state is ConnectionState.CONNECTED:
            raise InvalidTransition("already connected")
        if self.state is ConnectionState.CONNECTION_FAILED:
            raise InvalidTransition("connection failed; call manual_retry() first")
        self.attempts += 1
        return self._change(ConnectionState.CONNECTING, failure=self.failure, detail=self.detail)

    def succeeded(self) -> ConnectionStateChanged:
        if self.state is not ConnectionState.CONNECTING:
            raise InvalidTransition(f"cannot succeed from {self.state}")
        self.attempts = 0
        return self._change(ConnectionState.CONNECTED, failure=None)

    def attempt_failed(
        self, kind: FailureKind, detail: str | None = None
    ) -> ConnectionStateChanged:
        """An attempt failed: schedule another (disconnected) or give up (connection_failed).

        Authentication and TLS failures give up at once: retrying the same credentials or
        the same certificate cannot help.
        """
        if self.state is not ConnectionState.CONNECTING:
            raise InvalidTransition(f"no attempt in progress ({self.state})")
        if kind in GIVE_UP_AT_ONCE or self.attempts >= self.max_attempts:
            return self._change(ConnectionState.CONNECTION_FAILED, failure=kind, detail=detail)
        delay = backoff_delay(self.attempts, base=self.base_delay, cap=self.max_delay)
        return self._change(
            ConnectionState.DISCONNECTED, failure=kind, retry_in=delay, detail=detail
        )

    def give_up(self, kind: FailureKind, detail: str | None = None) -> ConnectionStateChanged:
        """A user-initiated attempt failed: report it now instead of retrying in the background."""
        if self.state is not ConnectionState.CONNECTING:
            raise InvalidTransition(f"no attempt in progress ({self.state})")
        return self._change(ConnectionState.CONNECTION_FAILED, failure=kind, detail=detail)

    def lost(self, kind: FailureKind, detail: str | None = None) -> ConnectionStateChanged:
        """An established connection dropped; reconnection starts from attempt 1."""
        if self.state is not ConnectionState.CONNECTED:
            raise InvalidTransition(f"cannot lose a connection from {self.state}")
        self.attempts = 0
        delay = backoff_delay(1, base=self.base_delay, cap=self.max_delay)
        return self._change(
            ConnectionState.DISCONNECTED, failure=kind, retry_in=delay, detail=detail
        )

    def manual_retry(self) -> ConnectionStateChanged:
        """The user asked to retry: a fresh budget of attempts, starting now."""
        if self.state is ConnectionState.CONNECTED:
            raise InvalidTransition("already connected")
        self.attempts = 1
        return self._change(ConnectionState.CONNECTING, failure=self.failure, detail=self.detail)

    def disconnect(self) -> ConnectionStateChanged:
        """The user disconnected: no failure, no retries."""
        self.attempts = 0
        return self._change(ConnectionState.DISCONNECTED, failure=None)
