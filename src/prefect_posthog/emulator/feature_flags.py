"""Feature-flag definitions for local evaluation, where project secret API keys are used.

- The flags service's ``GET /flags/definitions?token=<phc_…>`` (PostHog's Rust
  `rust/feature-flags/src/api/flag_definitions.rs`, `auth.rs`, `errors.rs`), which SDKs poll
  (posthog-python's ``Client._fetch_feature_flags_from_api``), with its legacy alias
  ``/api/feature_flag/local_evaluation``. The emulator's root plays the ingestion host.
- Django's ``feature_flags/local_evaluation`` (`products/feature_flags/backend/api/
  feature_flag.py`), which PostHog removed (#62229); served while the
  ``legacy_local_evaluation`` switch is on, as older PostHog served it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from prefect_posthog.emulator import project_secret_api_keys as psak
from prefect_posthog.emulator.auth import has_scope
from prefect_posthog.emulator.common import ApiError, Request, not_found, std_error
from prefect_posthog.emulator.projects import team_of_token
from prefect_posthog.emulator.routing import Route, api
from prefect_posthog.emulator.store import PostHogState

QUOTA_DETAIL = "You have exceeded your feature flag request quota"
_ALLOW = {"allow": "GET, OPTIONS, HEAD"}


def _flags_error(status: int, code: str, detail: str,
                 type_: str = "authentication_error") -> ApiError:
    return std_error(status, type_, code, detail)


def _flag_out(flag: dict, team: int) -> dict:
    """PostHog's EvaluationFeatureFlagSerializer."""
    return {"id": flag["id"], "team_id": team, "name": flag.get("name", ""), "key": flag["key"],
            "filters": flag.get("filters") or {}, "deleted": False,
            "active": flag.get("active", True), "ensure_experience_continuity": False,
            "version": flag.get("version", 1), "evaluation_runtime": "all",
            "bucketing_identifier": None, "evaluation_contexts": [], "has_experiment": False}


def definitions(store: PostHogState, team: dict) -> dict[str, Any]:
    """What `products/feature_flags/backend/local_evaluation.py` caches for the team: every
    flag not deleted (inactive ones too), by key, with the group-type mapping."""
    flags = sorted(store.data["feature_flags"].get(str(team["id"]), []), key=lambda f: f["key"])
    return {"flags": [_flag_out(f, team["id"]) for f in flags],
            "group_type_mapping": dict(store.data["group_types"].get(str(team["id"]), {})),
            "cohorts": {}, "minimal_flag_called_events": False, "property_matching_version": 1}


def _bearer(req: Request) -> str | None:
    # auth.rs: strip_prefix("Bearer "), case-sensitive, then trim
    value = req.headers.get("authorization", "")
    token = value[len("Bearer "):].strip() if value.startswith("Bearer ") else ""
    return token or None


def _team(store: PostHogState, req: Request, token: str | None) -> dict:
    """The team of ``?token=``; without one (PostHog #94532), the team of the ``phs_`` key."""
    if "token" not in req.query:
        key = psak.find_project_secret_key(store, None, token) if token and token.startswith(
            "phs_") else None
        if key is None:
            # axum's Query rejection: plain text
            raise ApiError(400, b"Failed to deserialize query string: missing field `token`",
                           {"content-type": "text/plain; charset=utf-8"})
        return store.data["projects"][str(key["team"])]
    team = team_of_token(store, req.query["token"])
    if team is None:
        raise _flags_error(401, "authentication_failed", "The provided API key is invalid or "
                           "has expired. Please check your API key and try again.")
    return team


def _authenticate(store: PostHogState, req: Request, team: dict, token: str | None) -> None:
    """A ``phs_`` key of the team with a flag scope (stamping its last use), or a personal
    key with a flag scope whose user is in the team's organization."""
    if token is None:
        raise _flags_error(401, "not_authenticated",
                           "Authentication credentials were not provided.")
    if token.startswith("phs_"):
        key = psak.find_project_secret_key(store, team["id"], token)
        # the lookup's WHERE: scopes null, *, feature_flag:read or feature_flag:write
        if key is None or not has_scope(key["scopes"], "feature_flag:read"):
            raise _flags_error(401, "authentication_failed", "Secret API token is invalid.")
        # `api_key_usage.rs` (PostHog #94532) stamps after a debounce, in the background.
        psak.stamp_last_used(key, req.now)
        return
    key = store.data["personal_api_keys"].get(token)
    user = store.data["users"].get(str(key["user"])) if key else None
    if (key is None or user is None or not has_scope(key["scopes"], "feature_flag:read")
            or (key.get("scoped_teams") and team["id"] not in key["scoped_teams"])
            or store.org_level(user, team) is None):
        raise _flags_error(401, "authentication_failed", "Personal API key is invalid.")


def _etag(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def flag_definitions(store: PostHogState, req: Request) -> tuple:
    """``/flags/definitions``: team, authentication, quota, then the definitions (or 304
    when ``If-None-Match`` carries the current ETag)."""
    if req.method == "HEAD":
        return 200, b"", {}
    if req.method == "OPTIONS":
        return 204, None, _ALLOW
    if req.method != "GET":
        return 405, b"", _ALLOW
    token = _bearer(req)
    team = _team(store, req, token)
    _authenticate(store, req, team, token)
    if store.config.quota_limited:
        raise _flags_error(402, "payment_required", QUOTA_DETAIL, "quota_limited")
    body = definitions(store, team)
    etag = _etag(body)
    headers = {"etag": f'W/"{etag}"', "cache-control": "private, must-revalidate"}
    sent = req.headers.get("if-none-match", "").strip()
    if sent and sent.removeprefix("W/").strip('"') == etag:
        return 304, None, headers
    return 200, body, headers


def local_evaluation(store: PostHogState, req: Request) -> tuple[int, Any]:
    """Django's old action: the team's active flags, its group-type mapping and cohorts,
    402 after authentication when the flags quota is used up."""
    if not store.config.legacy_local_evaluation:
        # The route is gone: the path is the detail route of a flag that does not exist.
        raise not_found()
    if store.config.quota_limited:
        return 402, {"type": "quota_limited", "detail": QUOTA_DETAIL, "code": "payment_required"}
    team = str(req.team["id"])
    flags = [f for f in store.data["feature_flags"].get(team, []) if f.get("active", True)]
    mapping = store.data["group_types"].get(team, {})
    return 200, {"flags": flags, "group_type_mapping": mapping, "cohorts": {}}


ROUTES = [
    api("GET", r"feature_flags/local_evaluation", local_evaluation, "feature_flag:read",
        project_secret="legacy_local_evaluation"),
    Route("*", r"flags/definitions", flag_definitions, "public"),
    Route("*", r"api/feature_flag/local_evaluation", flag_definitions, "public"),
]
