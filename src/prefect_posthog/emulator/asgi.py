"""ASGI plumbing: reading a request, sending a JSON answer, losing one on purpose."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from prefect_posthog.emulator.common import Request


class DropConnection(Exception):
    """Raised after the response started, so uvicorn closes the connection mid-response."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DropConnection))


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


async def read_request(scope: dict, receive: Any) -> Request:
    raw = b""
    while True:
        message = await receive()
        raw += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    host = headers.get("host", "127.0.0.1")
    return Request(method=scope["method"], path=scope["path"],
                   base_url=f"{scope.get('scheme', 'http')}://{host}",
                   query=dict(parse_qsl(scope["query_string"].decode(), keep_blank_values=True)),
                   headers=headers, raw=raw)


async def send_json(send: Any, status: int, body: Any, headers: dict | None = None) -> None:
    payload = b"" if body is None and status in (204, 304) else json.dumps(body).encode()
    head = [(b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode())]
    head += [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": payload})


async def drop(send: Any) -> None:
    """Start a response that promises a body, then fail: uvicorn closes the connection and
    the client sees the response as lost (a transport error)."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"1000")]})
    raise DropConnection()
