"""Which network addresses a user-supplied Pieces OS URL may point at (DEVIATIONS 4).

A Pieces OS runs on a developer's machine, so its address is loopback, private (RFC 1918),
link-local or IPv6 unique-local. Anything else — a public address, `0.0.0.0`, multicast,
reserved or documentation ranges, or a public IPv4 address smuggled inside an IPv6 form
(`::ffff:8.8.8.8`, NAT64 `64:ff9b::808:808`, 6to4 `2002:0808:0808::`) — is refused.

We list the allowed networks explicitly instead of trusting `ipaddress.is_private`, which
also answers True for `0.0.0.0/8`, TEST-NETs, 198.18/15 and 240/4.

Cloud metadata services live at link-local addresses (169.254.169.254, fd00:ec2::254); they
are refused by name: reaching them from a pod is the classic SSRF target and no Pieces OS
ever listens there.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressClass(StrEnum):
    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link_local"
    UNIQUE_LOCAL = "unique_local"
    METADATA = "cloud_metadata"
    UNSPECIFIED = "unspecified"
    PUBLIC_OR_RESERVED = "public_or_reserved"


ALLOWED_CLASSES = frozenset(
    {
        AddressClass.LOOPBACK,
        AddressClass.PRIVATE,
        AddressClass.LINK_LOCAL,
        AddressClass.UNIQUE_LOCAL,
    }
)

_V4_NETWORKS: tuple[tuple[ipaddress.IPv4Network, AddressClass], ...] = (
    (ipaddress.IPv4Network("127.0.0.0/8"), AddressClass.LOOPBACK),
    (ipaddress.IPv4Network("10.0.0.0/8"), AddressClass.PRIVATE),
    (ipaddress.IPv4Network("172.16.0.0/12"), AddressClass.PRIVATE),
    (ipaddress.IPv4Network("192.168.0.0/16"), AddressClass.PRIVATE),
    (ipaddress.IPv4Network("169.254.0.0/16"), AddressClass.LINK_LOCAL),
)
_V6_NETWORKS: tuple[tuple[ipaddress.IPv6Network, AddressClass], ...] = (
    (ipaddress.IPv6Network("::1/128"), AddressClass.LOOPBACK),
    (ipaddress.IPv6Network("fe80::/10"), AddressClass.LINK_LOCAL),
    (ipaddress.IPv6Network("fc00::/7"), AddressClass.UNIQUE_LOCAL),
)
_METADATA = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
    }
)
# IPv6 forms that carry an IPv4 address; the embedded address decides.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")


def parse_address(text: str) -> IPAddress | None:
    """An IP literal (brackets and IPv6 zone ids allowed), or None if `text` is a hostname."""
    candidate = text.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    candidate = candidate.split("%", 1)[0]  # fe80::1%eth0: the zone does not change the class
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    # IPv4-compatible (deprecated) ::a.b.c.d, but not :: or ::1 themselves.
    if int(address) >> 32 == 0 and int(address) > 1:
        return ipaddress.IPv4Address(int(address))
    return None


def classify(address: IPAddress) -> AddressClass:
    if address in _METADATA:
        return AddressClass.METADATA
    if address.is_unspecified:
        return AddressClass.UNSPECIFIED
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return classify(embedded)
        for network6, kind in _V6_NETWORKS:
            if address in network6:
                return kind
        return AddressClass.PUBLIC_OR_RESERVED
    if address.is_unspecified or address in ipaddress.IPv4Network("0.0.0.0/8"):
        return AddressClass.UNSPECIFIED
    for network4, kind in _V4_NETWORKS:
        if address in network4:
            return kind
    return AddressClass.PUBLIC_OR_RESERVED


def is_allowed(address: IPAddress) -> bool:
    return classify(address) in ALLOWED_CLASSES


def refusal_reason(addresses: list[IPAddress]) -> str | None:
    """Why this set of resolved addresses is refused, or None when every one is allowed."""
    if not addresses:
        return "the host does not resolve to any address"
    for address in addresses:
        kind = classify(address)
        if kind not in ALLOWED_CLASSES:
            embedded = (
                _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
            )
            shown = f"{address} (carrying {embedded})" if embedded is not None else str(address)
            label = kind.value.replace("_", " ")
            article = "an" if label[0] in "aeiou" else "a"
            return (
                f"{shown} is {article} {label} address; a Pieces OS URL must "
                "point at a loopback, private, link-local or unique-local address"
            )
    return None
