"""Helpers every area uses: the request record, PostHog's error bodies, ids, hashing,
timestamps and lax parsing."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass
class Request:
    """One request as a handler sees it.

    The transport fills ``method`` to ``client``; the router fills ``params`` (the path's
    named parts); authentication fills ``team`` and ``user`` (``{}`` when the caller is no
    user, e.g. a project secret key or a share's token).
    """

    method: str
    path: str
    base_url: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes = b""
    query_string: str = ""
    raw_path: str = ""  # as sent, still percent-encoded
    client: str = ""
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    team: dict = field(default_factory=dict)
    user: dict = field(default_factory=dict)
    now: float = 0.0

    def json_body(self) -> dict:
        """The body when it is a JSON object, else ``{}``."""
        return self.body if isinstance(self.body, dict) else {}


class ApiError(Exception):
    """An HTTP error answer with PostHog's body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def std_error(status: int, type_: str, code: str, detail: str, attr: str | None = None) -> ApiError:
    """PostHog's error body (`exceptions_hog/handler.py` of PostHog/drf-exceptions-hog)."""
    return ApiError(status, {"type": type_, "code": code, "detail": detail, "attr": attr})


def validation(attr: str | None, detail: str, code: str = "invalid_input") -> ApiError:
    return std_error(400, "validation_error", code, detail, attr)


def not_found(detail: str = "Not found.") -> ApiError:
    return std_error(404, "invalid_request", "not_found", detail)


def forbidden(detail: str) -> ApiError:
    return std_error(403, "authentication_error", "permission_denied", detail)


def unauthenticated(detail: str, code: str = "authentication_failed") -> ApiError:
    return std_error(401, "authentication_error", code, detail)


def server_error() -> ApiError:
    return std_error(500, "server_error", "error", "A server error occurred.")


def parse_body(raw: bytes, content_type: str) -> Any:
    """A request body as DRF's default parsers read it: JSON or form-encoded."""
    if not raw:
        return None
    if "application/x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(raw.decode(), keep_blank_values=True))
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise std_error(400, "invalid_request", "parse_error",
                        f"JSON parse error - {exc}") from None


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, tz=UTC)
    # DRF renders microseconds only when there are some.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if moment.microsecond else
                           "%Y-%m-%dT%H:%M:%SZ")


def base62(nbytes: int) -> str:
    number = int.from_bytes(secrets.token_bytes(nbytes), "big")
    out = ""
    while number:
        number, rem = divmod(number, 62)
        out = _BASE62[rem] + out
    return out or "0"


def hash_key(value: str) -> str:
    return "sha256$" + hashlib.sha256(value.encode()).hexdigest()


def hash_password(raw: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", raw.encode(), salt.encode(), 1000).hex()
    return f"pbkdf2_sha256$1000${salt}${digest}"


def check_password(raw: str, stored: str) -> bool:
    _, _, salt, _ = stored.split("$", 3)
    return secrets.compare_digest(hash_password(raw, salt), stored)


def to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def lax_bool(value: Any) -> bool | None:
    """DRF's BooleanField coercion."""
    if isinstance(value, bool):
        return value
    if value in (1, "1", "true", "True", "TRUE", "yes", "on", "t", "y"):
        return True
    if value in (0, "0", "false", "False", "FALSE", "no", "off", "f", "n"):
        return False
    return None
