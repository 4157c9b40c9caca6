"""Direct transport to Pieces OS: httpx for requests, websockets for streams.

Redirects are never followed blindly: each `Location` is vetted by the endpoint guard (when
one is given) before it is requested, so a Pieces URL cannot bounce us to a public address.
With a `pin` (the vetted `SafeEndpoint`), connections go to the address the guard checked,
not to whatever the name resolves to later, so DNS rebinding cannot swap it (the Host header
and TLS server name stay the hostname). Driver errors become our errors here, tagged with the
failure kind the state machine needs.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from pieces_integration.domain.connection_state import FailureKind
from pieces_integration.domain.endpoint_policy import parse_address
from pieces_integration.domain.errors import PiecesOSUnavailable, UnsafeEndpoint, UpstreamTimeout
from pieces_integration.ports.pieces import EndpointGuard, SafeEndpoint, TransportResponse

MAX_REDIRECTS = 3
STREAM_OPEN_TIMEOUT = 10.0  # seconds to open a WebSocket, unless the caller says otherwise


def unavailable(kind: FailureKind, message: str, **details: Any) -> PiecesOSUnavailable:
    return PiecesOSUnavailable(message, kind=kind.value, **details)


def timeout_error(message: str, kind: FailureKind) -> UpstreamTimeout:
    """No connection in time is the network (spec 8.4 "network"); a connection that Pieces OS
    accepted but did not answer on in time is Pieces OS itself ("service unavailable")."""
    return UpstreamTimeout(message, upstream="pieces_os", kind=kind.value)


def ssl_context(
    *, verify: bool = True, ca_file: str | os.PathLike[str] | None = None
) -> ssl.SSLContext:
    """TLS is verified by default; a custom CA bundle (a developer's own CA) may be given, and
    is then the one trusted for Pieces OS."""
    context = ssl.create_default_context(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# OpenSSL's verify codes (x509_vfy.h) behind `ssl.SSLCertVerificationError.verify_code`;
# any other verify failure means the certificate's issuer is not trusted.
_VERIFY_KINDS = {
    9: FailureKind.TLS_EXPIRED,  # X509_V_ERR_CERT_NOT_YET_VALID
    10: FailureKind.TLS_EXPIRED,  # X509_V_ERR_CERT_HAS_EXPIRED
    62: FailureKind.TLS_HOSTNAME,  # X509_V_ERR_HOSTNAME_MISMATCH
    64: FailureKind.TLS_HOSTNAME,  # X509_V_ERR_IP_ADDRESS_MISMATCH
}


def tls_failure(exc: BaseException) -> tuple[FailureKind, str] | None:
    """The TLS kind of a failed connection (distinct from "network"), with OpenSSL's words."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            kind = _VERIFY_KINDS.get(seen.verify_code, FailureKind.TLS_UNTRUSTED)
            return kind, seen.verify_message or str(seen)
        if isinstance(seen, ssl.CertificateError):  # hostname checks outside OpenSSL
            return FailureKind.TLS_HOSTNAME, str(seen)
        seen = seen.__cause__ or seen.__context__
    return None


def _tls_unavailable(exc: BaseException, where: str) -> PiecesOSUnavailable | None:
    found = tls_failure(exc)
    if found is None:
        return None
    kind, reason = found
    return unavailable(
        kind,
        f"TLS certificate of Pieces OS at {where} refused (CERTIFICATE_VERIFY_FAILED: {reason})",
    )


def _pin_address(pin: SafeEndpoint | None) -> str | None:
    """The vetted address to dial, when the endpoint is a hostname (literals need no pin)."""
    if pin is None or not pin.addresses or parse_address(pin.host) is not None:
        return None
    ipv4 = [a for a in pin.addresses if ":" not in a]
    return (ipv4 or list(pin.addresses))[0]


def _pinned(url: str, pin: SafeEndpoint | None) -> tuple[str, dict[str, str], dict[str, Any]]:
    address = _pin_address(pin)
    parts = urlsplit(url)
    if address is None or pin is None or parts.hostname != pin.host:
        return url, {}, {}
    shown = f"[{address}]" if ":" in address else address
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    extensions: dict[str, Any] = {}
    if parts.scheme == "https":
        extensions["sni_hostname"] = pin.host  # also the name the certificate must match
    return parts._replace(netloc=netloc).geturl(), {"Host": parts.netloc}, extensions


class _TrackedConnect(ws_connect):
    """websockets' `connect` that notes when the TCP (and TLS) connection is up, so an open
    timeout can be told apart: before it, the network; after it, Pieces OS not answering."""

    tcp_connected = False

    async def open_tcp_connection(self) -> ClientConnection:
        connection = await super().open_tcp_connection()
        self.tcp_connected = True
        return connection


class HttpxPiecesTransport:
    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        guard: EndpointGuard | None = None,
        pin: SafeEndpoint | None = None,
        tls: ssl.SSLContext | None = None,
        stream_open_timeout: float = STREAM_OPEN_TIMEOUT,
    ) -> None:
        self._client = client
        self.base_url = base_url.rstrip("/")
        self._guard = guard
        self._pin = pin
        self._tls = tls
        self._stream_open_timeout = stream_open_timeout

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        request_timeout: float,
    ) -> TransportResponse:
        url = self.base_url + path
        pin = self._pin
        for _hop in range(MAX_REDIRECTS + 1):
            target_url, extra_headers, extensions = _pinned(url, pin)
            try:
                response = await self._client.request(
                    method,
                    target_url,
                    params=params,
                    json=json_body,
                    headers={**(headers or {}), **extra_headers},
                    timeout=request_timeout,
                    follow_redirects=False,
                    extensions=extensions,
                )
            except httpx.ConnectTimeout as exc:
                raise timeout_error(
                    f"could not connect to Pieces OS at {self.base_url} in time",
                    FailureKind.NETWORK,
                ) from exc
            except httpx.TimeoutException as exc:
                raise timeout_error(
                    f"Pieces OS did not answer {method} {path} in time",
                    FailureKind.SERVICE_UNAVAILABLE,
                ) from exc
            except httpx.ConnectError as exc:
                if (tls := _tls_unavailable(exc, self.base_url)) is not None:
                    raise tls from exc
                # Refused: the machine answered but nothing listens (Pieces OS not running).
                # Anything else (no route, DNS) is the network between us and it.
                if _refused(exc):
                    raise unavailable(
                        FailureKind.NOT_RUNNING, f"nothing answers at {self.base_url}"
                    ) from exc
                raise unavailable(
                    FailureKind.NETWORK, f"cannot reach Pieces OS at {self.base_url}: {exc}"
                ) from exc
            except httpx.TransportError as exc:
                raise unavailable(
                    FailureKind.NETWORK, f"network error talking to Pieces OS: {exc!r}"
                ) from exc
            if response.is_redirect and "location" in response.headers:
                target = urljoin(url, response.headers["location"])
                pin = await self._vet_redirect(url, target)
                url, params = target, None
                if response.status_code in (301, 302, 303):
                    method, json_body = "GET", None
                continue
            return TransportResponse(
                status=response.status_code,
                content_type=response.headers.get("content-type", ""),
                body=response.content,
                headers=dict(response.headers),
            )
        raise unavailable(FailureKind.NETWORK, "too many redirects from Pieces OS")

    async def _vet_redirect(self, current: str, target: str) -> SafeEndpoint | None:
        if self._guard is not None:
            try:
                return await self._guard.check(target)
            except UnsafeEndpoint as exc:
                details = {**exc.details, "redirect": target}
                raise UnsafeEndpoint(
                    f"Pieces OS redirected to {target}, which is refused: {exc.message}",
                    **details,
                ) from exc
        # Without a guard (a fixed, configured URL) stay on the same origin.
        a, b = urlsplit(current), urlsplit(target)
        if (a.scheme, a.hostname, a.port) != (b.scheme, b.hostname, b.port):
            raise UnsafeEndpoint(f"redirect to another origin refused: {target}")
        return None

    @asynccontextmanager
    async def stream(self, path: str) -> AsyncIterator[AsyncIterator[str]]:
        url = "ws" + self.base_url.removeprefix("http") + path
        secure = url.startswith("wss")
        pinned: dict[str, Any] = {}
        address = _pin_address(self._pin)
        if address is not None and self._pin is not None:
            pinned = {"host": address, "port": self._pin.port}
            if secure:
                pinned["server_hostname"] = self._pin.host
        opening = _TrackedConnect(
            url,
            open_timeout=self._stream_open_timeout,
            ssl=self._tls if secure else None,
            max_size=None,
            ping_interval=20,
            ping_timeout=20,
            **pinned,
        )
        try:
            connection = await opening
        except TimeoutError as exc:
            if opening.tcp_connected:
                raise timeout_error(
                    f"Pieces OS did not answer the stream {path} handshake in time",
                    FailureKind.SERVICE_UNAVAILABLE,
                ) from exc
            raise timeout_error(
                f"could not connect to Pieces OS stream {path} in time", FailureKind.NETWORK
            ) from exc
        except ConnectionRefusedError as exc:
            raise unavailable(FailureKind.NOT_RUNNING, f"cannot connect to {url}") from exc
        except websockets.InvalidStatus as exc:
            status = exc.response.status_code
            kind = FailureKind.AUTHENTICATION if status == 401 else FailureKind.SERVICE_UNAVAILABLE
            raise unavailable(kind, f"stream {path} refused with HTTP {status}") from exc
        except (OSError, websockets.InvalidHandshake) as exc:
            if (tls := _tls_unavailable(exc, url)) is not None:
                raise tls from exc
            raise unavailable(FailureKind.NETWORK, f"stream {path} failed: {exc!r}") from exc

        async def frames() -> AsyncIterator[str]:
            try:
                async for message in connection:
                    yield message if isinstance(message, str) else message.decode()
            except websockets.ConnectionClosed as exc:
                raise unavailable(FailureKind.NETWORK, f"stream {path} dropped: {exc}") from exc

        try:
            yield frames()
        finally:
            await connection.close()

    async def aclose(self) -> None:
        await self._client.aclose()
