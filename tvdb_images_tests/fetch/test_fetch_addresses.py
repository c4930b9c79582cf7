"""The address classifier behind the SSRF guard: classification only, nothing here connects."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvdb_images.fetch.addresses import blocked_reason, is_public

BLOCKED = {
    "169.254.169.254": "link-local",  # cloud metadata service
    "10.0.0.1": "private",
    "10.255.255.255": "private",
    "172.16.0.1": "private",
    "172.31.255.254": "private",
    "192.168.1.1": "private",
    "100.64.0.1": "carrier-grade NAT",
    "100.127.255.254": "carrier-grade NAT",
    "127.0.0.1": "loopback",
    "127.1.2.3": "loopback",
    "0.0.0.0": "unspecified",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "private",  # reserved 240/4 is in Python's non-global table
    "255.255.255.255": "private",
    "192.0.2.1": "private",  # TEST-NET-1, documentation only
    "::1": "loopback",
    "::": "unspecified",
    "fc00::1": "private",
    "fd12:3456:789a::1": "private",
    "fe80::1": "link-local",
    "fec0::1": "site-local",
    "ff02::1": "multicast",
    "2001:db8::1": "private",
}


@pytest.mark.parametrize("address", sorted(BLOCKED))
def test_non_public_addresses_are_blocked(address: str) -> None:
    reason = blocked_reason(address)
    assert reason is not None
    assert reason.startswith(BLOCKED[address])
    assert not is_public(address)


@pytest.mark.parametrize(
    ("address", "embedded"),
    [
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.1.2.3", "private"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("2002:c0a8:0101::1", "private"),  # 6to4 of 192.168.1.1
    ],
)
def test_ipv6_forms_of_blocked_ipv4_are_blocked(address: str, embedded: str) -> None:
    reason = blocked_reason(address)
    assert reason is not None and reason.startswith(embedded) and "embedded" in reason


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(address) is None
    assert is_public(ipaddress.ip_address(address))


@given(st.ip_addresses(v=4))
def test_mapped_ipv6_is_judged_like_its_ipv4(address: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert is_public(mapped) == is_public(address)


@given(st.ip_addresses(network="10.0.0.0/8") | st.ip_addresses(network="100.64.0.0/10"))
def test_whole_private_ranges_are_blocked(address: ipaddress.IPv4Address) -> None:
    assert not is_public(address)


@given(st.ip_addresses())
def test_a_public_address_is_globally_routable_unicast(address: ipaddress.IPv4Address) -> None:
    if is_public(address):
        assert address.is_global and not address.is_multicast and not address.is_loopback
