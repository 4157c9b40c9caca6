"""URL safety (DEVIATIONS 4): only loopback, private, link-local and unique-local addresses."""

from __future__ import annotations

import httpx
import pytest

from pieces_integration.adapters.pieces_os.endpoint_guard import ResolvingEndpointGuard
from pieces_integration.adapters.pieces_os.transport import HttpxPiecesTransport
from pieces_integration.domain.endpoint_policy import AddressClass, classify, parse_address
from pieces_integration.domain.errors import UnsafeEndpoint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", AddressClass.LOOPBACK),
        ("127.8.9.10", AddressClass.LOOPBACK),
        ("10.1.2.3", AddressClass.PRIVATE),
        ("172.16.0.1", AddressClass.PRIVATE),
        ("172.31.255.254", AddressClass.PRIVATE),
        ("192.168.1.20", AddressClass.PRIVATE),
        ("169.254.10.10", AddressClass.LINK_LOCAL),
        ("::1", AddressClass.LOOPBACK),
        ("[::1]", AddressClass.LOOPBACK),
        ("fe80::1%eth0", AddressClass.LINK_LOCAL),
        ("fd12:3456::1", AddressClass.UNIQUE_LOCAL),
        ("::ffff:192.168.0.5", AddressClass.PRIVATE),
        ("8.8.8.8", AddressClass.PUBLIC_OR_RESERVED),
        ("172.32.0.1", AddressClass.PUBLIC_OR_RESERVED),
        ("100.64.0.1", AddressClass.PUBLIC_OR_RESERVED),  # carrier-grade NAT, not a LAN
        ("192.0.2.1", AddressClass.PUBLIC_OR_RESERVED),  # TEST-NET: is_private says True
        ("224.0.0.1", AddressClass.PUBLIC_OR_RESERVED),
        ("255.255.255.255", AddressClass.PUBLIC_OR_RESERVED),
        ("0.0.0.0", AddressClass.UNSPECIFIED),
        ("0.1.2.3", AddressClass.UNSPECIFIED),
        ("::", AddressClass.UNSPECIFIED),
        ("::ffff:8.8.8.8", AddressClass.PUBLIC_OR_RESERVED),
        ("::ffff:0.0.0.0", AddressClass.UNSPECIFIED),
        ("64:ff9b::808:808", AddressClass.PUBLIC_OR_RESERVED),  # NAT64 of 8.8.8.8
        ("2002:808:808::1", AddressClass.PUBLIC_OR_RESERVED),  # 6to4 of 8.8.8.8
        ("::8.8.8.8", AddressClass.PUBLIC_OR_RESERVED),  # IPv4-compatible
        ("2001:4860:4860::8888", AddressClass.PUBLIC_OR_RESERVED),
        ("169.254.169.254", AddressClass.METADATA),
        ("fd00:ec2::254", AddressClass.METADATA),
    ],
)
def test_classifies_addresses(text: str, expected: AddressClass) -> None:
    address = parse_address(text)
    assert address is not None
    assert classify(address) is expected


def resolver_for(table: dict[str, list[str]]):
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


GUARD = ResolvingEndpointGuard(
    resolver_for(
        {
            "pieces.lan": ["192.168.1.20"],
            "devbox.local": ["10.0.0.7", "fd00::7"],
            "evil.example": ["93.184.216.34"],
            "split.example": ["192.168.1.20", "8.8.8.8"],  # one bad answer is enough
            "mapped.example": ["::ffff:8.8.8.8"],
            "zero.example": ["0.0.0.0"],
            "empty.example": [],
        }
    )
)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:39300",
        "http://127.0.0.1:39300",
        "http://[::1]:39300",
        "http://pieces.lan:39300",
        "https://devbox.local:39300/",
        "http://[fe80::1%25eth0]:1000",
        "http://172.20.0.3:1000",
    ],
)
async def test_allows_local_and_private_urls(url: str) -> None:
    guard = ResolvingEndpointGuard(resolver_for({"localhost": ["127.0.0.1", "::1"]}))
    if "pieces.lan" in url or "devbox" in url:
        guard = GUARD
    endpoint = await guard.check(url)
    assert endpoint.addresses


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://8.8.8.8:39300", "8.8.8.8"),
        ("http://evil.example:39300", "93.184.216.34"),
        ("http://split.example", "8.8.8.8"),
        ("http://mapped.example", "8.8.8.8"),
        ("http://[::ffff:8.8.8.8]:39300", "8.8.8.8"),
        ("http://[::ffff:808:808]:39300", "8.8.8.8"),
        ("http://[64:ff9b::808:808]", "64:ff9b"),
        ("http://[2001:4860:4860::8888]", "2001:4860"),
        ("http://0.0.0.0:39300", "unspecified"),
        ("http://[::]:39300", "unspecified"),
        ("http://zero.example", "unspecified"),
        ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("http://empty.example", "does not resolve"),
        ("http://nowhere.example", "cannot resolve"),
        ("ftp://127.0.0.1", "http"),
        ("file:///etc/passwd", "http"),
        ("http://user:pw@127.0.0.1", "credentials"),
        ("http://:39300", "no host"),
    ],
)
async def test_refuses_everything_else_with_a_clear_error(url: str, needle: str) -> None:
    with pytest.raises(UnsafeEndpoint) as caught:
        await GUARD.check(url)
    assert needle in caught.value.message
    assert caught.value.code == "unsafe_endpoint"


def redirecting_app(location: str):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/health":
            return httpx.Response(302, headers={"location": location})
        return httpx.Response(200, text="ok", headers={"content-type": "text/plain"})

    return httpx.MockTransport(handler)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("http://8.8.8.8/steal", "8.8.8.8 is a public or reserved address"),
        ("http://evil.example/", "93.184.216.34 is a public or reserved address"),
        ("http://[::ffff:8.8.8.8]/", "(carrying 8.8.8.8) is a public or reserved address"),
        ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
    ],
)
async def test_redirects_to_public_addresses_are_refused(location: str, reason: str) -> None:
    client = httpx.AsyncClient(transport=redirecting_app(location))
    transport = HttpxPiecesTransport(client, "http://127.0.0.1:39300", guard=GUARD)
    with pytest.raises(UnsafeEndpoint) as caught:
        await transport.request("GET", "/.well-known/health", request_timeout=1)
    await client.aclose()
    message = caught.value.message
    assert message.startswith(f"Pieces OS redirected to {location}, which is refused: ")
    assert reason in message
    assert "must point at a loopback, private, link-local or unique-local address" in message
    assert caught.value.code == "unsafe_endpoint"
    assert caught.value.details["redirect"] == location


@pytest.mark.anyio
async def test_redirects_within_the_allowed_set_are_followed() -> None:
    client = httpx.AsyncClient(transport=redirecting_app("http://pieces.lan:39301/ok"))
    transport = HttpxPiecesTransport(client, "http://127.0.0.1:39300", guard=GUARD)
    response = await transport.request("GET", "/.well-known/health", request_timeout=1)
    assert response.status == 200 and response.text == "ok"
    await client.aclose()


@pytest.mark.anyio
async def test_without_a_guard_redirects_must_stay_on_the_same_origin() -> None:
    client = httpx.AsyncClient(transport=redirecting_app("http://192.168.1.1/"))
    transport = HttpxPiecesTransport(client, "http://127.0.0.1:39300")
    with pytest.raises(UnsafeEndpoint) as caught:
        await transport.request("GET", "/.well-known/health", request_timeout=1)
    await client.aclose()
    assert caught.value.message == "redirect to another origin refused: http://192.168.1.1/"


@pytest.mark.anyio
async def test_unreachable_hosts_are_network_failures_not_pieces_not_running() -> None:
    from pieces_integration.domain.errors import PiecesOSUnavailable

    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 113] No route to host")

    def refused(request: httpx.Request) -> httpx.Response:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as exc:
            raise httpx.ConnectError("All connection attempts failed") from exc

    for handler, kind in ((unreachable, "network"), (refused, "not_running")):
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        transport = HttpxPiecesTransport(client, "http://192.168.1.20:39300")
        with pytest.raises(PiecesOSUnavailable) as caught:
            await transport.request("GET", "/.well-known/health", request_timeout=1)
        assert caught.value.details["kind"] == kind
        await client.aclose()
