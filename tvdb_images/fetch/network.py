"""The connect-time SSRF guard and the per-attempt deadline, as an httpx transport.

Checking a URL's host before the request is not enough: DNS can answer differently a moment later
(rebinding). So the guard sits where sockets are opened, as an httpcore network backend: it resolves
the host itself, refuses the connection if any address is not public, and connects to the address
it checked. TLS still verifies and sends SNI for the host name, and the Host header is unchanged,
because httpcore takes both from the request's URL, not from the socket.

The same backend wraps each stream so that every socket read and write waits no longer than what
remains of the current attempt's deadline: a server trickling headers or body one byte at a time
cannot hold a worker past `total_timeout`.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

from .addresses import IPAddress, blocked_reason
from .errors import PRIVATE_ADDRESS, error
from .urls import AllowList

Resolver = Callable[[str, int], list[IPAddress]]

# Monotonic time at which the current attempt must end; per thread, since each fetch runs in one.
_deadline: ContextVar[float | None] = ContextVar("tvdb_images_fetch_deadline", default=None)


@contextmanager
def deadline(at: float) -> Iterator[None]:
    """Make socket operations in this block fail with a timeout once `time.monotonic()` passes `at`."""
    token = _deadline.set(at)
    try:
        yield
    finally:
        _deadline.reset(token)


def _bounded(timeout: float | None, timeout_error: type[Exception]) -> float | None:
    at = _deadline.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise timeout_error("total deadline of the attempt passed")
    return left if timeout is None else min(timeout, left)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for host, in its preferred order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])  # drop an IPv6 scope id
        if address not in addresses:
            addresses.append(address)
    return addresses


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose timeouts never reach past the current attempt's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(
            ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)
        )
        return DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to public addresses, or to IP literals the allow-list names.

    A host name is resolved once; if any of its addresses is not public the connection is refused
    (FetchError "private_address"), otherwise the checked addresses are tried in order. An IP literal
    is trusted only when an allow-list entry names that exact address (and port, if the entry has
    one); the trust never extends to host names that happen to resolve to it.
    """

    def __init__(
        self,
        allow: AllowList,
        *,
        resolver: Resolver = resolve,
        inner: httpcore.NetworkBackend | None = None,
    ) -> None:
        self._allow = allow
        self._resolver = resolver
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception | None = None
        for address in self.checked_addresses(host, port):
            try:
                stream = self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=_bounded(timeout, httpcore.ConnectTimeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            return DeadlineStream(stream)
        assert failure is not None  # checked_addresses never returns an empty list
        raise failure

    def checked_addresses(self, host: str, port: int) -> list[IPAddress]:
        """The addresses a connection to host:port may use; raise FetchError if any is not allowed."""
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            if self._allow.trusts_address(literal, port):
                return [literal]
            addresses = [literal]
        else:
            try:
                addresses = self._resolver(host, port)
            except (OSError, UnicodeError) as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
            if not addresses:
                raise httpcore.ConnectError(f"{host} has no addresses")
        for address in addresses:
            reason = blocked_reason(address)
            if reason is not None:
                raise error(PRIVATE_ADDRESS, f"{host} is {address}, a {reason} address")
        return addresses

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("image downloads never use unix sockets")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own HTTP/1.1 transport, connecting through GuardedBackend and never through a proxy."""

    def __init__(
        self,
        allow: AllowList,
        *,
        limits: httpx.Limits | None = None,
        resolver: Resolver = resolve,
        verify: bool = True,
    ) -> None:
        limits = limits or httpx.Limits()
        ssl_context = httpx.create_ssl_context(verify=verify)  # honours SSL_CERT_FILE / SSL_CERT_DIR
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)  # no proxies from the env
        self.backend = GuardedBackend(allow, resolver=resolver)
        # HTTPTransport takes no network backend, so its pool is replaced by the same pool built with
        # one. test_fetch_guard fails loudly should a new httpx stop reading the attribute.
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.backend,
        )
