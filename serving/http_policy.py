"""Rules every response follows, as one pure ASGI middleware (streamed bodies pass through untouched):

- **One URL per resource.** A path with an encoded slash or backslash (`%2F`, `%5C`) is not routed:
  Starlette routes on the decoded path, so `/api/v1/images%2Fseries%2F1%2Fposter%2Fsmall` would
  reach the same image as its plain spelling and a CDN would cache it twice. It answers 404.
- **No sniffing.** Every response says `X-Content-Type-Options: nosniff`, so a browser never runs a
  stored object or an error body as something other than its declared type.
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ENCODED_SEPARATOR = re.compile(rb"%(2f|5c)", re.IGNORECASE)
_NOSNIFF = (b"x-content-type-options", b"nosniff")


class HttpPolicyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), _NOSNIFF]
            await send(message)

        if _ENCODED_SEPARATOR.search(scope.get("raw_path") or b""):
            await _not_found(scope, send_with_policy)
            return
        await self.app(scope, receive, send_with_policy)


async def _not_found(scope: Scope, send: Send) -> None:
    body = {
        "status": 404,
        "code": "not_found",
        "message": "no such endpoint: a path may not contain an encoded '/' or '\\'",
    }
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
