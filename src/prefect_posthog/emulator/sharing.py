"""Sharing of insights, session recordings and dashboards (`posthog/api/sharing.py`,
`posthog/models/sharing_configuration.py`, `posthog/models/share_password.py`):
configurations, re-enabling and refresh, passwords, and the public viewer."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from prefect_posthog.emulator.common import (
    ApiError,
    Request,
    check_password,
    forbidden,
    hash_password,
    iso,
    lax_bool,
    not_found,
    parse_body,
    server_error,
    to_int,
    validation,
)
from prefect_posthog.emulator.constants import SHARING_GRACE_SECONDS
from prefect_posthog.emulator.routing import Route, api
from prefect_posthog.emulator.store import PostHogState

SETTINGS_BOOL_KEYS = ("whitelabel", "noHeader", "showInspector", "legend", "detailed",
                      "hideExtraDetails")
_NO_ADVANCED = "Password management requires the Advanced Permissions feature"


def _new_token() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(22)).decode().rstrip("=")


def _resource(store: PostHogState, req: Request) -> str:
    kind, rid, team = req.params["resource"], req.params["resource_id"], req.team["id"]
    if kind == "insights" and rid not in store.data["insights"].get(str(team), {}):
        raise not_found("Insight not found.")
    if kind == "dashboards" and rid not in store.data["dashboards"].get(str(team), {}):
        raise not_found("Dashboard not found.")
    return f"{team}:{kind}:{rid}"


def active_config(store: PostHogState, resource: str) -> dict | None:
    """The newest config of the resource that has not expired."""
    rows = [c for c in store.data["sharing"].values()
            if c["resource"] == resource and c["expires_at"] is None]
    return max(rows, key=lambda c: c["id"]) if rows else None


def _passwords(store: PostHogState, config_id: int) -> list[dict]:
    return sorted((p for p in store.data["share_passwords"].values()
                   if p["config"] == config_id and p["is_active"]), key=lambda p: p["id"])


def _config_out(store: PostHogState, config: dict | None) -> dict:
    if config is None:
        # Nothing saved: an unsaved config with a fresh random token on every read.
        return {"created_at": None, "enabled": False, "access_token": _new_token(),
                "settings": None, "password_required": False, "share_passwords": [],
                "user_access_level": "editor"}
    return {
        "user_access_level": "editor",
        "created_at": iso(config["created_at"]), "enabled": config["enabled"],
        "access_token": config["access_token"], "settings": config["settings"],
        "password_required": config["password_required"],
        "share_passwords": [
            {"id": p["id"], "created_at": iso(p["created_at"]), "note": p["note"],
             "created_by_email": p["created_by_email"], "is_active": True}
            for p in _passwords(store, config["id"])
        ],
    }


def new_config(store: PostHogState, resource: str, now: float, *, enabled: bool = False,
               settings: dict | None = None, password_required: bool = False) -> dict:
    config = {"id": store.next_id("config"), "resource": resource,
              "access_token": _new_token(), "enabled": enabled, "settings": settings,
              "password_required": password_required, "created_at": now, "expires_at": None}
    store.data["sharing"][str(config["id"])] = config
    return config


def _public_sharing_allowed(store: PostHogState, team: dict) -> bool:
    return store.organization(team).get("public_sharing_allowed",
                                        store.config.public_sharing_allowed)


def _advanced(store: PostHogState, team: dict) -> bool:
    return store.organization(team).get("advanced_permissions",
                                        store.config.advanced_permissions)


def _check_edit(store: PostHogState, req: Request) -> None:
    if lax_bool(req.json_body().get("enabled")) and not _public_sharing_allowed(store,
                                                                                 req.team):
        raise forbidden("Public sharing is disabled for this organization.")


def _dashboard(store: PostHogState, req: Request) -> dict:
    return store.data["dashboards"][str(req.team["id"])][req.params["resource_id"]]


def _adopt_legacy_token(store: PostHogState, req: Request, resource: str,
                        config: dict | None) -> dict | None:
    """A dashboard's legacy ``share_token`` is adopted (and saved), without turning
    sharing on."""
    if req.params["resource"] != "dashboards":
        return config
    dashboard = _dashboard(store, req)
    legacy = dashboard.get("share_token")
    if legacy and any(c["access_token"] == legacy for c in store.data["sharing"].values()
                      if c is not config):
        # Already some config's token (an expired one, say): adopting it would collide
        # with the unique token; the active token stays and the legacy one follows it.
        dashboard["share_token"] = config["access_token"] if config else None
        return config
    if legacy and (config is None or config["access_token"] != legacy):
        config = config or new_config(store, resource, req.now)
        config["access_token"] = legacy
    return config


def get_sharing(store: PostHogState, req: Request) -> tuple[int, Any]:
    resource = _resource(store, req)
    config = _adopt_legacy_token(store, req, resource, active_config(store, resource))
    return 200, _config_out(store, config)


def _clean_settings(raw: Any) -> dict | None:
    """Known keys only, booleans coerced, nulls dropped."""
    if raw is not None and not isinstance(raw, dict):
        raise validation("settings", "Invalid settings format")
    if raw is None:
        return None
    clean: dict[str, Any] = {}
    for name in SETTINGS_BOOL_KEYS:
        if raw.get(name) is not None:
            flag = lax_bool(raw[name])
            if flag is None:
                raise validation("settings", "Invalid settings format")
            clean[name] = flag
    if raw.get("theme") is not None:
        clean["theme"] = str(raw["theme"])
    return clean


def _sharing_changes(store: PostHogState, req: Request) -> dict[str, Any]:
    """The PATCH body's fields, checked in the serializer's order."""
    body = req.json_body()
    changes: dict[str, Any] = {}
    for name in ("enabled", "settings", "password_required"):
        if name not in body:
            continue
        if name == "settings":
            changes[name] = _clean_settings(body[name])
            continue
        value = lax_bool(body[name])
        if value is None:
            raise validation(name, "Must be a valid boolean.", "invalid")
        if name == "password_required" and value and not _advanced(store, req.team):
            raise ApiError(403, {"error": "Sharing with password requires the Advanced "
                                 "Permissions feature"})
        changes[name] = value
    return changes


def _expire_others(store: PostHogState, resource: str, config: dict, now: float, *,
                   grace_too: bool) -> None:
    """Expire the resource's other active configs (and, with ``grace_too``, the ones still
    in their refresh grace period)."""
    for other in store.data["sharing"].values():
        if other["resource"] != resource or other is config:
            continue
        if other["expires_at"] is None or (grace_too and other["expires_at"] > now):
            other["expires_at"] = now


def update_sharing(store: PostHogState, req: Request) -> tuple[int, Any]:
    resource = _resource(store, req)
    _check_edit(store, req)
    changes = _sharing_changes(store, req)
    config = _adopt_legacy_token(store, req, resource, active_config(store, resource))
    reenabling = changes.get("enabled") is True and not (config and config["enabled"])
    config = config or new_config(store, resource, req.now)
    config.update(changes)
    # A write collapses duplicate active configs of the resource to one.
    _expire_others(store, resource, config, req.now, grace_too=False)
    if reenabling:
        # Turning sharing on issues a new link; every earlier token of the resource dies
        # at once, one in its refresh grace period included.
        _expire_others(store, resource, config, req.now, grace_too=True)
        config["access_token"] = _new_token()
    if req.params["resource"] == "dashboards":
        # The PATCH's token is the live one: the legacy token is never adopted again.
        _dashboard(store, req)["share_token"] = None
    if "enabled" in changes and req.params["resource"] != "session_recordings":
        store.log_activity(req.team["id"], req.params["resource"][:-1].capitalize(),
                           req.params["resource_id"],
                           "sharing enabled" if changes["enabled"] else "sharing disabled",
                           req.user, {"changes": []})
    return 200, _config_out(store, config)


def refresh_sharing(store: PostHogState, req: Request) -> tuple[int, Any]:
    """A new link; the old ones keep working for the grace period, passwords are copied."""
    resource = _resource(store, req)
    _check_edit(store, req)
    current = active_config(store, resource)
    for config in store.data["sharing"].values():
        if config["resource"] == resource and config["expires_at"] is None:
            config["expires_at"] = req.now + SHARING_GRACE_SECONDS
    if req.params["resource"] == "dashboards":  # the legacy token is cleared
        _dashboard(store, req)["share_token"] = None
    new = new_config(store, resource, req.now,
                     enabled=current["enabled"] if current else False,
                     settings=current["settings"] if current else None,
                     password_required=current["password_required"] if current else False)
    if current and current["password_required"]:
        for pw in _passwords(store, current["id"]):
            copy = {**pw, "id": store.next_id("password"), "config": new["id"],
                    "created_at": req.now}
            store.data["share_passwords"][str(copy["id"])] = copy
    return 200, _config_out(store, new)


def _password_body(req: Request) -> tuple[str, str]:
    body = req.json_body()
    raw = body.get("raw_password")
    if raw is not None and not isinstance(raw, str):
        raise validation("raw_password", "Not a valid string.")
    note = body.get("note", "")
    if note is not None and not isinstance(note, str):
        raise validation("note", "Not a valid string.")
    if note and len(note) > 100:
        raise validation("note", "Ensure this field has no more than 100 characters.",
                         "max_length")
    if raw and len(raw) < 8:
        raise validation("raw_password", "Password must be at least 8 characters long.")
    if not raw:
        raw = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
    return raw, note or ""


def create_sharing_password(store: PostHogState, req: Request) -> tuple[int, Any]:
    resource = _resource(store, req)
    _check_edit(store, req)
    config = active_config(store, resource)
    if config is None or not config["password_required"]:
        raise ApiError(400, {"error": "Password protection must be enabled before creating "
                             "passwords"})
    if not _advanced(store, req.team):
        raise ApiError(403, {"error": _NO_ADVANCED})
    raw, note = _password_body(req)
    row = {"id": store.next_id("password"), "config": config["id"],
           "hash": hash_password(raw), "note": note, "created_by_email": req.user["email"],
           "created_at": req.now, "is_active": True}
    store.data["share_passwords"][str(row["id"])] = row
    # The plaintext is shown here only; PostHog keeps a Django password hash.
    return 201, {"id": row["id"], "password": raw, "note": row["note"],
                 "created_at": iso(row["created_at"]),
                 "created_by_email": row["created_by_email"]}


def delete_sharing_password(store: PostHogState, req: Request) -> tuple[int, Any]:
    resource = _resource(store, req)
    _check_edit(store, req)
    if not _advanced(store, req.team):
        raise ApiError(403, {"error": _NO_ADVANCED})
    config = active_config(store, resource)
    password_id = to_int(req.params["password_id"])
    if password_id is None:
        raise server_error()  # PostHog's lookup of a non-numeric id is an unhandled error
    match = [p for p in _passwords(store, config["id"]) if p["id"] == password_id
             ] if config else []
    if not match:
        raise not_found("Password not found")
    match[0]["is_active"] = False
    return 204, None


def live_sharing_config(store: PostHogState, token: str) -> dict | None:
    """The enabled, unexpired config whose link is ``token``."""
    now = store.now()
    for config in store.data["sharing"].values():
        if config["access_token"] == token:
            live = config["enabled"] and not (config["expires_at"]
                                              and config["expires_at"] <= now)
            return config if live else None
    return None


def view_share(store: PostHogState, req: Request) -> tuple[int, Any]:
    """The public viewer ``/shared/{token}`` (`posthog/api/sharing.py`, SharingViewerPageViewSet):
    200 when the link works and the password fits."""
    token = req.params["token"].strip("/")
    body = parse_body(req.raw, "application/json") if req.method == "POST" else None
    password = body.get("password") if isinstance(body, dict) else None
    config = live_sharing_config(store, token)
    team = config and store.data["projects"].get(config["resource"].split(":", 1)[0])
    if team and not _public_sharing_allowed(store, team):
        config = None  # every share of the organization answers 404
    if config is None:
        return 404, not_found().body
    if not config["password_required"]:
        return 200, {"shared": True}
    if password is None:
        return 401, {"error": "Password required"}
    if any(check_password(password, p["hash"]) for p in _passwords(store, config["id"])):
        return 200, {"shareToken": base64.urlsafe_b64encode(secrets.token_bytes(24)).decode()}
    return 401, {"error": "Incorrect password"}


def _sharing_routes() -> list[Route]:
    routes = []
    for parent in (r"(?P<resource>insights|dashboards)/(?P<resource_id>[^/]+)",
                   r"(?P<resource>session_recordings)/(?P<resource_id>[^/]+)"):
        read, write = "sharing_configuration:read", "sharing_configuration:write"
        routes += [
            api("GET", parent + "/sharing", get_sharing, read),
            api("PATCH", parent + "/sharing", update_sharing, write),
            api("POST", parent + "/sharing/refresh", refresh_sharing, write),
            api("POST", parent + "/sharing/passwords", create_sharing_password, write),
            api("DELETE", parent + r"/sharing/passwords/(?P<password_id>[^/.]+)",
                delete_sharing_password, write),
        ]
    return routes


ROUTES = [*_sharing_routes(),
          Route("*", r"shared/(?P<token>.*?)", view_share, "public", logged=False)]
