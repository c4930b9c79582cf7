"""HTTP/1.1 spoken over a plain socket, byte for byte as written: request targets no client library
would send (encoded slashes, odd ids), headers trickled one byte at a time, oversized headers."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def parse_response(data: bytes) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(status, headers, body)


def request(
    port: int, target: str, headers: dict[str, str] | None = None, *, method: str = "GET"
) -> RawResponse:
    """One request with `Connection: close`; the whole answer."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return send(port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def send(port: int, data: bytes, *, timeout: float = 30) -> RawResponse:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return parse_response(read_all(sock))


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def trickle(
    port: int, data: bytes, *, interval: float, give_up_after: float
) -> tuple[float, RawResponse | None]:
    """Send `data` one byte every `interval` seconds until the server answers or closes; the seconds
    it took and what it answered (None if it was still listening after `give_up_after`)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=interval) as sock:
        for byte in data:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                answer = None
            except ConnectionResetError:
                answer = b""
            if answer is not None:
                sock.settimeout(5)
                rest = read_all(sock) if answer else b""
                closed = RawResponse(0)  # closed without a word
                return time.monotonic() - started, parse_response(answer + rest) if answer else closed
            if time.monotonic() - started > give_up_after:
                return time.monotonic() - started, None
        sock.settimeout(give_up_after)
        try:
            answer = read_all(sock)
        except TimeoutError:
            return time.monotonic() - started, None
        return time.monotonic() - started, parse_response(answer)
