"""Vets a user-supplied Pieces OS URL by resolving it (DEVIATIONS 4).

Every address the host resolves to must pass `domain.endpoint_policy`; one bad address is
enough to refuse, because the client may connect to any of them. The resolver is injectable so
tests can make a hostname resolve to whatever they need.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from pieces_integration.domain.endpoint_policy import parse_address, refusal_reason
from pieces_integration.domain.errors import UnsafeEndpoint
from pieces_integration.ports.pieces import SafeEndpoint

Resolver = Callable[[str, int], Awaitable[list[str]]]
ALLOWED_SCHEMES = {"http": 80, "https": 443, "ws": 80, "wss": 443}


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return sorted({str(info[4][0]) for info in infos})


class ResolvingEndpointGuard:
    def __init__(self, resolver: Resolver = system_resolver, *, timeout: float = 2.0) -> None:
        self._resolve = resolver
        self._timeout = timeout

    async def check(self, url: str) -> SafeEndpoint:
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise UnsafeEndpoint(f"not a valid URL: {exc}", field="pieces_url") from exc
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise UnsafeEndpoint(
                "the Pieces OS URL must start with http:// or https://", field="pieces_url"
            )
        if parts.username or parts.password:
            raise UnsafeEndpoint("credentials in the URL are not allowed", field="pieces_url")
        host = parts.hostname
        if not host:
            raise UnsafeEndpoint("the Pieces OS URL has no host", field="pieces_url")
        port = port or ALLOWED_SCHEMES[scheme]
        literal = parse_address(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                async with asyncio.timeout(self._timeout):
                    resolved = await self._resolve(host, port)
            except (OSError, TimeoutError) as exc:
                raise UnsafeEndpoint(
                    f"cannot resolve {host!r}: {exc or 'timed out'}", field="pieces_url", host=host
                ) from exc
            parsed = [parse_address(text) for text in resolved]
            addresses = [a for a in parsed if a is not None]
            if len(addresses) != len(parsed):
                raise UnsafeEndpoint(f"{host!r} resolved to a non-IP answer", field="pieces_url")
        reason = refusal_reason(addresses)
        if reason is not None:
            raise UnsafeEndpoint(
                f"Pieces OS URL refused: {reason}",
                field="pieces_url",
                host=host,
                addresses=[str(a) for a in addresses],
            )
        return SafeEndpoint(
            url=url.strip(), host=host, port=port, addresses=tuple(str(a) for a in addresses)
        )
