"""Helpers shared by the emulator's areas: error bodies, ids, hashing, timestamps,
the request and configuration records, the empty state."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class ApiError(Exception):
    """An HTTP error answer with PostHog's body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def std_error(status: int, type_: str, code: str, detail: str, attr: str | None = None) -> ApiError:
    return ApiError(status, {"type": type_, "code": code, "detail": detail, "attr": attr})


def validation(attr: str | None, detail: str, code: str = "invalid_input") -> ApiError:
    return std_error(400, "validation_error", code, detail, attr)


def not_found(detail: str = "Not found.") -> ApiError:
    return std_error(404, "invalid_request", "not_found", detail)


def forbidden(detail: str) -> ApiError:
    return std_error(403, "authentication_error", "permission_denied", detail)


def server_error() -> ApiError:
    return std_error(500, "server_error", "error", "A server error occurred.")


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    # DRF renders microseconds only when there are some (SPEC §0.4).
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
    if isinstance(value, bool):
        return value
    if value in (1, "1", "true", "True", "TRUE", "yes", "on", "t", "y"):
        return True
    if value in (0, "0", "false", "False", "FALSE", "no", "off", "f", "n"):
        return False
    return None


@dataclass
class Request:
    """What a handler sees of one request (already authenticated and authorised)."""

    method: str
    path: str
    base_url: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    team: dict
    user: dict
    now: float


@dataclass
class Config:
    """Emulator behaviour switches."""

    advanced_permissions: bool = True
    public_sharing_allowed: bool = True
    property_definitions_route: bool = True


def default_state() -> dict[str, Any]:
    return {
        "next_ids": {"user": 2, "group": 1, "config": 1, "password": 1, "activity": 1},
        "organizations": {"org-1": {"id": "org-1", "name": "Emulated Organization",
                                    "members": {"1": "admin"}}},
        "projects": {"1": {"id": 1, "organization": "org-1", "name": "Default project",
                           "api_token": "phc_emulator_project_token"}},
        "users": {"1": {"id": 1, "uuid": str(uuid.UUID(int=1)), "distinct_id": "emulator-user",
                        "first_name": "Emulator", "last_name": "", "email": "owner@example.com",
                        "current_team": 1}},
        "personal_api_keys": {},
        "group_types": {"1": {"0": "company", "1": "organization"}},
        "groups": {},
        "activity": {},
        "related": {},
        "insights": {},
        "dashboards": {},
        "sharing": {},
        "share_passwords": {},
        "project_secret_api_keys": {},
        "feature_flags": {"1": []},
    }


def group_id(team: int, gti: int, key: str) -> str:
    return json.dumps([team, gti, key])
