"""What one request may cost before the app sees it: header bytes, header count, and the time to send
them, enforced in uvicorn's httptools protocol.

httptools (llhttp) accepts any number of headers of any size, and uvicorn arms no timer while a
request's headers arrive: its keep-alive timeout stops at the first byte, so a client that sends one
header byte every few seconds holds a connection (and its buffers) for as long as it likes. This
protocol counts what the parser hands over and answers 431 past SERVING_MAX_HEADER_BYTES or
SERVING_MAX_HEADERS, and 408 (closing the connection) when a request's headers, from its first byte,
or a new connection's first request, take longer than SERVING_HEADER_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from tvdb_images.config import Settings, load_settings

PROTOCOL = "serving.http_guard:GuardedHttpToolsProtocol"


@dataclass(frozen=True)
class HeaderLimits:
    max_bytes: int
    max_count: int
    timeout_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> HeaderLimits:
        return cls(
            settings.serving_max_header_bytes,
            settings.serving_max_headers,
            settings.serving_header_timeout_seconds,
        )


@cache
def configured_limits() -> HeaderLimits:
    """Read once per worker process: uvicorn builds the protocol from its class path in each worker."""
    return HeaderLimits.from_settings(load_settings())


class _Refused(Exception):
    """Raised from a parser callback; httptools turns it into an HttpParserError."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    limits: HeaderLimits | None = None  # tests set it; else the settings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = self.limits or configured_limits()
        self._deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._header_count = 0
        self._refusal: tuple[int, str] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # Transport, as uvicorn's own
        super().connection_made(transport)
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = self._header_count = 0
        if self._deadline is None:
            self._arm_deadline()

    def on_url(self, url: bytes) -> None:
        self._count(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4, 1)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_deadline()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn answers every parser error with 400; a refused limit keeps its own status."""
        status, message = self._refusal or (400, msg)
        self._disarm_deadline()
        self._send_and_close(status, message)

    def _count(self, size: int, headers: int) -> None:
        self._header_bytes += size
        self._header_count += headers
        if self._header_count > self._limits.max_count:
            self._refusal = (431, f"more than {self._limits.max_count} request headers")
            raise _Refused
        if self._header_bytes > self._limits.max_bytes:
            self._refusal = (431, f"request line and headers exceed {self._limits.max_bytes} bytes")
            raise _Refused

    def _arm_deadline(self) -> None:
        self._deadline = self.loop.call_later(self._limits.timeout_seconds, self._headers_too_slow)

    def _disarm_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is under way (pipelined request); its own flow decides
        self._send_and_close(408, f"request headers not received within {self._limits.timeout_seconds:g} s")

    def _send_and_close(self, status: int, message: str) -> None:
        body = message.encode("ascii")
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()
