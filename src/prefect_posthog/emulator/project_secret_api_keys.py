"""Project secret API keys (`posthog/api/project_secret_api_key.py`,
`posthog/models/project_secret_api_key.py`): list, create, read, update, delete, roll, and
the authentication of a ``phs_`` value on the routes that take one."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from prefect_posthog.emulator.common import (
    Request,
    base62,
    forbidden,
    hash_key,
    iso,
    not_found,
    server_error,
    to_int,
    unauthenticated,
    validation,
)
from prefect_posthog.emulator.constants import (
    LAST_USED_DEBOUNCE_SECONDS,
    PSAK_LABEL_MAX,
    PSAK_MAX_PER_TEAM,
)
from prefect_posthog.emulator.routing import api
from prefect_posthog.emulator.store import PostHogState

# `posthog/scopes.py`: what a project secret key may hold, and the scope objects.
PSAK_ALLOWED_SCOPES = ("account:read", "endpoint:read", "experiment:read", "feature_flag:read",
                       "loop:write")
SCOPE_OBJECTS = frozenset({
    "action", "access_control", "account", "activity_log", "annotation", "batch_export",
    "cohort", "connection", "dashboard", "dashboard_template", "early_access_feature",
    "endpoint", "event_definition", "experiment", "export", "feature_flag", "group",
    "hog_function", "insight", "integration", "llm_gateway", "loop", "notebook",
    "organization", "organization_member", "person", "plugin", "project", "property_definition",
    "query", "session_recording", "session_recording_playlist", "sharing_configuration",
    "subscription", "survey", "user", "webhook",
})
INTERNAL_SCOPE_OBJECTS = frozenset({"internal"})


def _key_out(store: PostHogState, key: dict, value: str | None = None) -> dict:
    user = store.data["users"].get(str(key["created_by"]))
    return {"id": key["id"], "label": key["label"], "value": value,
            "mask_value": key["mask_value"], "created_at": iso(key["created_at"]),
            "created_by": store.user_basic(user) if user else None,
            "last_used_at": iso(key["last_used_at"]),
            "last_rolled_at": iso(key["last_rolled_at"]), "scopes": list(key["scopes"])}


def _team_keys(store: PostHogState, team: int) -> list[dict]:
    return [k for k in store.data["project_secret_api_keys"].values() if k["team"] == team]


def _require_admin(store: PostHogState, req: Request) -> None:
    if store.org_level(req.user, req.team) not in ("admin", "owner"):
        raise forbidden("You don't have sufficient permissions in the project.")


def _given(body: dict, name: str, *, required: bool) -> Any:
    """The field's value, ``None`` when it is absent and optional (DRF's ``required`` and
    ``null`` errors otherwise)."""
    if name not in body:
        if required:
            raise validation(name, "This field is required.", "required")
        return None
    if body[name] is None:
        raise validation(name, "This field may not be null.", "null")
    return body[name]


def _validate_label(body: dict, *, required: bool) -> str | None:
    label = _given(body, "label", required=required)
    if label is None:
        return None
    if isinstance(label, bool) or not isinstance(label, (str, int, float)):
        raise validation("label", "Not a valid string.")
    label = str(label)  # a DRF CharField stores a number as its text
    if not label.strip():
        raise validation("label", "This field may not be blank.", "blank")
    if len(label) > PSAK_LABEL_MAX:
        raise validation("label", f"Ensure this field has no more than {PSAK_LABEL_MAX} "
                         "characters.", "max_length")
    return label.strip()


def _validate_scope(scope: Any) -> None:
    if not isinstance(scope, str):
        raise validation("scopes", "Not a valid string.")
    if scope == "*":
        raise validation("scopes", "Wildcard scope '*' is not allowed for project API "
                         "keys. Please specify explicit scopes.")
    obj, _, action = scope.partition(":")
    if (obj not in SCOPE_OBJECTS or obj in INTERNAL_SCOPE_OBJECTS
            or action not in ("read", "write")):
        raise validation("scopes", f"Invalid scope: {scope}")
    if scope == "llm_gateway:read":
        raise validation("scopes", "LLM gateway scope is not available for this "
                         "project. Contact support to enable this feature.")
    if scope not in PSAK_ALLOWED_SCOPES:
        raise validation("scopes", f"Scope '{scope}' can not be assigned to a project "
                         "secret API key. Allowed scopes: "
                         + ", ".join(sorted(PSAK_ALLOWED_SCOPES)))


def _validate_scopes(body: dict, *, required: bool) -> list[str] | None:
    scopes = _given(body, "scopes", required=required)
    if scopes is None:
        return None
    if not isinstance(scopes, list):
        raise validation("scopes", f'Expected a list of items but got type '
                         f'"{type(scopes).__name__}".', "not_a_list")
    if not scopes:
        raise validation("scopes", "This list may not be empty.", "empty")
    for scope in scopes:
        _validate_scope(scope)
    return list(dict.fromkeys(scopes))


def _new_value() -> str:
    return "phs_" + base62(35)


def _set_value(key: dict, value: str) -> None:
    """Only the hash and the mask are kept; the value is shown once."""
    key["secure_value"] = hash_key(value)
    key["mask_value"] = f"{value[:4]}...{value[-4:]}"


def new_key(store: PostHogState, team: int, label: str, scopes: list[str], user_id: int,
            now: float, *, value: str | None = None) -> tuple[dict, str]:
    value = value or _new_value()
    key = {"id": base62(32), "team": team, "label": label, "created_at": now,
           "created_by": user_id, "last_used_at": None, "last_rolled_at": None,
           "scopes": scopes}
    _set_value(key, value)
    store.data["project_secret_api_keys"][key["id"]] = key
    return key, value


def _get_key(store: PostHogState, req: Request) -> dict:
    key = store.data["project_secret_api_keys"].get(req.params["key_id"])
    if key is None or key["team"] != req.team["id"]:
        raise not_found()
    return key


def list_project_secret_api_keys(store: PostHogState, req: Request) -> tuple[int, Any]:
    """DRF LimitOffsetPagination, newest first."""
    keys = sorted(_team_keys(store, req.team["id"]), key=lambda k: k["created_at"],
                  reverse=True)
    limit = to_int(req.query.get("limit", "100"))
    offset = to_int(req.query.get("offset", "0"))
    limit = 100 if limit is None or limit < 1 else min(limit, 1000)
    offset = 0 if offset is None or offset < 0 else offset

    def link(off: int) -> str:
        return f"{req.base_url}{req.path}?{urlencode({'limit': limit, 'offset': off})}"

    return 200, {
        "count": len(keys),
        "next": link(offset + limit) if offset + limit < len(keys) else None,
        "previous": link(max(0, offset - limit)) if offset > 0 else None,
        "results": [_key_out(store, k) for k in keys[offset: offset + limit]],
    }


def create_project_secret_api_key(store: PostHogState, req: Request) -> tuple[int, Any]:
    _require_admin(store, req)
    body = req.json_body()
    label = _validate_label(body, required=True)
    scopes = _validate_scopes(body, required=True)
    team = req.team["id"]
    if len(_team_keys(store, team)) >= PSAK_MAX_PER_TEAM:
        raise validation(None, f"You can only have {PSAK_MAX_PER_TEAM} project secret API "
                         "keys. Remove an existing key before creating a new one.")
    if any(k["label"] == label for k in _team_keys(store, team)):
        raise validation(None, f"Project secret API key with label '{label}' already exists.")
    key, value = new_key(store, team, label, scopes, req.user["id"], req.now)
    store.log_activity(team, "ProjectSecretAPIKey", key["id"], "created", req.user,
                       {"name": label, "changes": []})
    return 201, _key_out(store, key, value)


def get_project_secret_api_key(store: PostHogState, req: Request) -> tuple[int, Any]:
    return 200, _key_out(store, _get_key(store, req))


def update_project_secret_api_key(store: PostHogState, req: Request) -> tuple[int, Any]:
    return _write_key(store, req, partial=True)


def replace_project_secret_api_key(store: PostHogState, req: Request) -> tuple[int, Any]:
    return _write_key(store, req, partial=False)


def _write_key(store: PostHogState, req: Request, *, partial: bool) -> tuple[int, Any]:
    _require_admin(store, req)
    key = _get_key(store, req)
    body = req.json_body()
    label = _validate_label(body, required=not partial)
    scopes = _validate_scopes(body, required=not partial)
    if label is not None and label != key["label"] and any(
            k["label"] == label for k in _team_keys(store, key["team"])):
        # Only create checks the label; on update the unique constraint surfaces as a 500.
        raise server_error()
    if label is not None:
        key["label"] = label
    if scopes is not None:
        key["scopes"] = scopes
    store.log_activity(key["team"], "ProjectSecretAPIKey", key["id"], "updated", req.user,
                       {"name": key["label"], "changes": []})
    return 200, _key_out(store, key)


def delete_project_secret_api_key(store: PostHogState, req: Request) -> tuple[int, Any]:
    _require_admin(store, req)
    key = _get_key(store, req)
    del store.data["project_secret_api_keys"][key["id"]]
    store.log_activity(key["team"], "ProjectSecretAPIKey", key["id"], "deleted", req.user,
                       {"name": key["label"], "changes": []})
    return 204, None


def roll_key(store: PostHogState, key: dict, user: dict | None, now: float) -> str:
    """A new value; the old one stops working at once (no grace period)."""
    value = _new_value()
    _set_value(key, value)
    key["last_rolled_at"] = now
    store.log_activity(key["team"], "ProjectSecretAPIKey", key["id"], "updated", user,
                       {"name": key["label"], "changes": [
                           {"type": "ProjectSecretAPIKey", "action": "changed",
                            "field": "mask_value"},
                           {"type": "ProjectSecretAPIKey", "action": "changed",
                            "field": "last_rolled_at"}]})
    return value


def roll_project_secret_api_key(store: PostHogState, req: Request) -> tuple[int, Any]:
    _require_admin(store, req)
    key = _get_key(store, req)
    value = roll_key(store, key, req.user, req.now)
    return 200, _key_out(store, key, value)


def find_project_secret_key(store: PostHogState, team: int | None, value: str) -> dict | None:
    """The key whose value is ``value`` (of ``team``, or of any team when ``None``)."""
    digest = hash_key(value)
    for key in store.data["project_secret_api_keys"].values():
        if (team is None or key["team"] == team) and secrets.compare_digest(
                key["secure_value"], digest):
            return key
    return None


def authenticate_project_secret_key(store: PostHogState, team: dict, value: str, scope: str,
                                    now: float) -> dict:
    """`posthog/auth.py` ProjectSecretAPIKeyAuthentication, then the scope the route needs.

    Raises:
        ApiError: 401 for a value that is no live key of the team, 403 without the scope.
    """
    key = find_project_secret_key(store, team["id"], value)
    if key is None:
        raise unauthenticated("Project secret API key is invalid.")
    if scope not in key["scopes"]:
        raise forbidden(f"API key missing required scope '{scope}'")
    stamp_last_used(key, now)
    return key


def stamp_last_used(key: dict, now: float) -> None:
    """`posthog/auth.py` and the flags service's `api_key_usage.rs` alike: stamp the use
    only when there is none yet or the last one is more than an hour old."""
    if key["last_used_at"] is None or now - key["last_used_at"] > LAST_USED_DEBOUNCE_SECONDS:
        key["last_used_at"] = now


_KEY = r"project_secret_api_keys/(?P<key_id>[^/.]+)"
ROUTES = [
    api("GET", r"project_secret_api_keys", list_project_secret_api_keys, "project:read"),
    api("POST", r"project_secret_api_keys", create_project_secret_api_key, "project:write"),
    api("GET", _KEY, get_project_secret_api_key, "project:read"),
    api("PATCH", _KEY, update_project_secret_api_key, "project:write"),
    api("PUT", _KEY, replace_project_secret_api_key, "project:write"),
    api("DELETE", _KEY, delete_project_secret_api_key, "project:write"),
    api("POST", _KEY + "/roll", roll_project_secret_api_key, "project:write"),
]
