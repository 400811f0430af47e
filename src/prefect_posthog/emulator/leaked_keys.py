"""``POST /api/revoke_leaked_key``: PostHog's public, unauthenticated report of a leaked key
(`posthog/api/leaked_key.py`, PublicLeakedKeyReport; `posthog/api/secret_revocation.py`).

A live key is rolled on the spot, behind its owner's back: a project secret key gets a new
value and ``last_rolled_at`` (``roll_project_secret_api_key_and_notify``), a personal key a
new value too (``PersonalAPIKeySerializer.roll``). The new values go to the owners by email;
here they go nowhere. The key type comes from the prefix alone.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from prefect_posthog.emulator import project_secret_api_keys as psak
from prefect_posthog.emulator.common import ApiError, Request, parse_body, std_error, validation
from prefect_posthog.emulator.constants import LEAKED_KEY_TOKEN_MAX
from prefect_posthog.emulator.routing import Route
from prefect_posthog.emulator.store import PostHogState

# Personal keys issued before the phx_ prefix: 43 URL-safe characters.
_LEGACY_PERSONAL_KEY = re.compile(r"^[A-Za-z0-9_-]{43}$")


def _token(req: Request) -> str:
    """The serializer's one field: ``token``, a CharField(max_length=200), JSON only."""
    if "application/json" not in req.headers.get("content-type", ""):
        content_type = req.headers.get("content-type", "")
        raise std_error(415, "invalid_request", "unsupported_media_type",
                        f'Unsupported media type "{content_type}" in request.')
    body = parse_body(req.raw, "application/json")
    body = body if isinstance(body, dict) else {}
    if "token" not in body:
        raise validation("token", "This field is required.", "required")
    token = body["token"]
    if token is None:
        raise validation("token", "This field may not be null.", "null")
    if isinstance(token, (dict, list, bool)):
        raise validation("token", "Not a valid string.")
    token = str(token).strip()  # CharField trims whitespace
    if not token:
        raise validation("token", "This field may not be blank.", "blank")
    if len(token) > LEAKED_KEY_TOKEN_MAX:
        raise validation("token", f"Ensure this field has no more than {LEAKED_KEY_TOKEN_MAX} "
                         "characters.", "max_length")
    return token


def _roll_personal_api_key(store: PostHogState, token: str) -> bool:
    keys = store.data["personal_api_keys"]
    if token not in keys:
        return False
    # The key keeps its owner, label and scopes under a value nobody here knows.
    keys["phx_" + secrets.token_urlsafe(32)] = keys.pop(token)
    return True


def _roll_project_secret_api_key(store: PostHogState, token: str, now: float) -> bool:
    key = psak.find_project_secret_key(store, None, token)
    if key is None:
        return False
    psak.roll_key(store, key, None, now)
    return True


def revoke_leaked_key(store: PostHogState, req: Request) -> tuple[int, Any]:
    """``{"found": bool, "type": "project_secret_api_key"|"personal_api_key"|null}``."""
    if req.method != "POST":
        raise ApiError(405, {"type": "invalid_request", "code": "method_not_allowed",
                             "detail": f'Method "{req.method}" not allowed.', "attr": None})
    token = _token(req)
    if token.startswith("phs_"):
        found = _roll_project_secret_api_key(store, token, req.now)
        kind = "project_secret_api_key"
    elif token.startswith("phx_") or _LEGACY_PERSONAL_KEY.match(token):
        found = _roll_personal_api_key(store, token)
        kind = "personal_api_key"
    else:  # OAuth tokens and anything else: nothing the emulator issues
        found = False
    return 200, {"found": found, "type": kind if found else None}


ROUTES = [Route("*", r"api/revoke_leaked_key", revoke_leaked_key, "public",
                throttle="leaked_key")]
