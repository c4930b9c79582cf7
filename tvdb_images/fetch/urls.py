"""Which URLs the fetcher may request: scheme, credentials and the host allow-list.

Every URL is checked here before it is requested, including each redirect target, so a catalog row
or a server's Location header can never steer a download to a host nobody listed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from .addresses import IPAddress
from .errors import BAD_URL, FORBIDDEN_HOST, error

SCHEMES: dict[str, int] = {"http": 80, "https": 443}


@dataclass(frozen=True)
class HostEntry:
    """One allow-list entry: a host (name or canonical IP text) and optionally the only port allowed."""

    host: str
    port: int | None = None

    @property
    def address(self) -> IPAddress | None:
        """The IP address when the entry is an IP literal: such an entry is trusted at connect time."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def normalize_host(raw: str) -> str:
    """Canonical form of a URL host: lowercase IDNA name without a trailing dot, or compressed IP text."""
    host = raw.strip().lower().removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        host = httpx.URL(f"http://{host}/").raw_host.decode("ascii")
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a host name: {raw!r}") from exc
    return host.rstrip(".")


def parse_entry(entry: str) -> HostEntry:
    """Parse "host", "host:port", "1.2.3.4[:port]", "::1" or "[::1][:port]"; raise ValueError if malformed."""
    text = entry.strip().lower()
    if not text:
        raise ValueError("empty allowed host entry")
    port_text: str | None = None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"malformed allowed host entry {entry!r}")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text  # a bare name, IPv4 address or unbracketed IPv6 address
    if not host or any(c in host for c in "/@?#"):
        raise ValueError(f"malformed allowed host entry {entry!r}")
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"bad port in allowed host entry {entry!r}")
        port = int(port_text)
    return HostEntry(normalize_host(host), port)


class AllowList:
    """The set of hosts downloads may go to; "host" allows any port, "host:port" only that port."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.entries: frozenset[HostEntry] = frozenset(parse_entry(e) for e in entries)
        self._any_port = {e.host for e in self.entries if e.port is None}
        self._with_port = {(e.host, e.port) for e in self.entries if e.port is not None}

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset(e.host for e in self.entries)

    def allows(self, host: str, port: int) -> bool:
        return host in self._any_port or (host, port) in self._with_port

    def trusts_address(self, address: IPAddress, port: int) -> bool:
        """True if an IP-literal entry names this address (and port): the one way to reach a private one."""
        return self.allows(str(address), port)


@dataclass(frozen=True)
class Target:
    """A checked URL with the host and port the request will actually go to."""

    url: httpx.URL
    host: str
    port: int


def check_url(url: str | httpx.URL, allow: AllowList) -> Target:
    """Parse and vet a URL; raise FetchError("bad_url" / "forbidden_host") if it may not be fetched."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise error(BAD_URL, f"unparseable URL: {exc}") from None
    scheme = parsed.scheme
    if scheme not in SCHEMES:
        raise error(BAD_URL, f"scheme {scheme!r} is not http or https")
    if parsed.userinfo:
        raise error(BAD_URL, "URL carries credentials")
    if not parsed.raw_host:
        raise error(BAD_URL, "URL has no host")
    port = parsed.port if parsed.port is not None else SCHEMES[scheme]
    if not 0 < port < 65536:
        raise error(BAD_URL, f"port {port} out of range")
    try:
        host = normalize_host(parsed.raw_host.decode("ascii"))
    except ValueError as exc:
        raise error(BAD_URL, str(exc)) from None
    if not allow.allows(host, port):
        raise error(FORBIDDEN_HOST, f"{host}:{port} is not an allowed host")
    return Target(parsed, host, port)
