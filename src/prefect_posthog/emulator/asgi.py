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
    query_string = scope["query_string"].decode()
    return Request(method=scope["method"], path=scope["path"],
                   base_url=f"{scope.get('scheme', 'http')}://{host}",
                   query=dict(parse_qsl(query_string, keep_blank_values=True)),
                   headers=headers, raw=raw, query_string=query_string,
                   raw_path=(scope.get("raw_path") or scope["path"].encode()).decode("latin-1"),
                   client=(scope.get("client") or ("", 0))[0])


async def send_json(send: Any, status: int, body: Any, headers: dict | None = None) -> None:
    """Send ``body`` as JSON; ``bytes`` go as they are, ``None`` as no body on 204/304."""
    if isinstance(body, bytes):
        payload = body
    elif body is None and status in (204, 304):
        payload = b""
    else:
        payload = json.dumps(body).encode()
    head = {"content-type": "application/json", "content-length": str(len(payload))}
    head.update({k.lower(): str(v) for k, v in (headers or {}).items()})
    await send({"type": "http.response.start", "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in head.items()]})
    await send({"type": "http.response.body", "body": payload})


async def drop(send: Any) -> None:
    """Start a response that promises a body, then fail: uvicorn closes the connection and
    the client sees the response as lost (a transport error)."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"1000")]})
    raise DropConnection()
