"""Which IP addresses an image download may connect to.

A catalog row is untrusted input: a URL, or the DNS answer for its host, could point the fetcher at
the machine itself, the cloud metadata service or the private network. Only globally routable
unicast addresses pass. IPv6 forms that embed an IPv4 address (mapped, NAT64, 6to4) are judged by
the IPv4 address they lead to, since that is where a translating gateway would deliver the packets.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def blocked_reason(address: IPAddress | str) -> str | None:
    """Why `address` must not be connected to (e.g. "loopback"), or None if it is public."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            reason = blocked_reason(embedded)
            return f"{reason} (embedded {embedded})" if reason else None
        if ip.is_site_local:
            return "site-local"
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("carrier-grade NAT", ip in _CGNAT),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    )
    for reason, hit in checks:
        if hit:
            return reason
    return None if ip.is_global else "not globally routable"


def is_public(address: IPAddress | str) -> bool:
    return blocked_reason(address) is None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour
