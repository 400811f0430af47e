"""The emulated PostHog: data and the behaviour of every endpoint of the slice (SPEC §1-§3).

Each public handler is named as the client method that calls it and returns
``(status, body)`` or raises `ApiError`. State is plain JSON-able dicts, so it can be saved
to a file and read back.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

GROUP_KEY_MAX = 400
PSAK_LABEL_MAX = 40
PSAK_MAX_PER_TEAM = 50
SHARING_GRACE_SECONDS = 300
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
SETTINGS_BOOL_KEYS = ("whitelabel", "noHeader", "showInspector", "legend", "detailed",
                      "hideExtraDetails")
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


def _group_id(team: int, gti: int, key: str) -> str:
    return json.dumps([team, gti, key])


@dataclass
class PostHogState:
    """All emulated data plus the endpoint behaviour."""

    data: dict[str, Any] = field(default_factory=default_state)
    config: Config = field(default_factory=Config)
    clock_offset: float = 0.0
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _index: dict[tuple[int, int], list[dict]] = field(default_factory=dict, repr=False)

    def now(self) -> float:
        return time.time() + self.clock_offset

    def next_id(self, kind: str) -> int:
        value = self.data["next_ids"][kind]
        self.data["next_ids"][kind] = value + 1
        return value

    # -- users, keys, projects ------------------------------------------------------------

    def add_personal_api_key(self, value: str, scopes: list[str] | None = None, *,
                             user_id: int = 1, scoped_teams: list[int] | None = None,
                             label: str = "emulator") -> None:
        self.data["personal_api_keys"][value] = {
            "label": label, "user": user_id, "scopes": scopes or ["*"],
            "scoped_teams": scoped_teams,
        }

    def org_level(self, user: dict, team: dict) -> str | None:
        org = self.data["organizations"].get(team["organization"], {})
        return org.get("members", {}).get(str(user["id"]))

    def user_basic(self, user: dict) -> dict:
        keys = ("id", "uuid", "distinct_id", "first_name", "last_name", "email")
        return {**{k: user.get(k) for k in keys}, "is_email_verified": True,
                "hedgehog_config": None, "role_at_organization": None}

    def log_activity(self, team: int, scope: str, item_id: str, activity: str, user: dict | None,
                     detail: dict) -> None:
        entry = {
            "id": str(uuid.uuid4()),
            "user": ({"first_name": user["first_name"], "email": user["email"]} if user
                     else {"first_name": "System", "email": None, "is_system": True}),
            "activity": activity, "scope": scope, "item_id": item_id, "detail": detail,
            "created_at": iso(self.now()), "_seq": self.next_id("activity"),
        }
        self.data["activity"].setdefault(f"{team}:{scope}:{item_id}", []).append(entry)

    # -- groups ----------------------------------------------------------------------------

    def _group_out(self, group: dict) -> dict:
        return {"group_type_index": group["group_type_index"], "group_key": group["group_key"],
                "group_properties": dict(group["group_properties"]),
                "created_at": iso(group["created_at"])}

    def _ordered(self, team: int, gti: int) -> list[dict]:
        """Groups of one type in ascending (created_at, key) order, cached until a create."""
        index = self._index.get((team, gti))
        if index is None:
            index = sorted(self._team_groups(team, gti),
                           key=lambda g: (g["created_at_us"], g["group_key"]))
            self._index[(team, gti)] = index
        return index

    def _team_groups(self, team: int, gti: int) -> list[dict]:
        return [g for g in self.data["groups"].values()
                if g["team"] == team and g["group_type_index"] == gti]

    @staticmethod
    def _required_query_int(req: Request, name: str) -> int:
        raw = req.query.get(name)
        if raw is None or raw == "":
            # The view raises a plain ValidationError: code invalid_input (SPEC §1).
            raise validation(name, "This query parameter is required.")
        value = to_int(raw)
        if value is None:
            raise validation(name, "A valid integer is required.")
        return value

    def _lookup_group(self, req: Request) -> dict:
        gti = self._required_query_int(req, "group_type_index")
        key = req.query.get("group_key")
        if not key:
            raise validation("group_key", "This query parameter is required.")
        group = self.data["groups"].get(_group_id(req.team["id"], gti, key))
        if group is None:
            raise not_found()
        return group

    def list_group_types(self, req: Request) -> tuple[int, Any]:
        """SPEC §6.5: a bare array ordered by index."""
        types = self.data["group_types"].get(str(req.team["id"]), {})
        return 200, [{"group_type": name, "group_type_index": int(index),
                      "name_singular": None, "name_plural": None, "detail_dashboard": None,
                      "default_columns": None, "created_at": None}
                     for index, name in sorted(types.items(), key=lambda x: int(x[0]))]

    def list_groups(self, req: Request) -> tuple[int, Any]:
        raw = req.query.get("group_type_index")
        if raw is None or raw == "":
            raise validation("group_type_index",
                             "You must pass ?group_type_index= in this URL. To get a list of "
                             "valid group types, call /api/:project_id/groups_types/")
        gti = to_int(raw)
        if gti is None:
            raise validation("group_type_index", "A valid integer is required.")
        rows = self._ordered(req.team["id"], gti)  # ascending (created_at, key)
        if key_filter := req.query.get("group_key"):
            rows = [g for g in rows if key_filter.lower() in g["group_key"].lower()]
        if search := req.query.get("search"):
            needle = search.lower()
            rows = [g for g in rows if needle in json.dumps(g["group_properties"]).lower()
                    or needle == g["group_key"].lower()]
        end = len(rows)
        if cursor := _decode_cursor(req.query.get("cursor")):
            end = bisect.bisect_left(rows, (cursor["c"], cursor["k"]),
                                     key=lambda g: (g["created_at_us"], g["group_key"]))
        # Newest first: the page is the 100 rows just before the cursor position.
        page, more = rows[max(0, end - 100):end][::-1], end > 100
        next_url = None
        if more:
            last = page[-1]
            params = {"group_type_index": gti,
                      "cursor": _encode_cursor(last["created_at_us"], last["group_key"])}
            for name in ("search", "group_key"):
                if req.query.get(name):
                    params[name] = req.query[name]
            next_url = f"{req.base_url}{req.path}?{urlencode(params)}"
        return 200, {"next": next_url, "previous": None,
                     "results": [self._group_out(g) for g in page]}

    def create_group(self, req: Request) -> tuple[int, Any]:
        body = req.body if isinstance(req.body, dict) else {}
        if "group_type_index" not in body:
            raise validation("group_type_index", "This field is required.", "required")
        if body["group_type_index"] is None:
            raise validation("group_type_index", "This field may not be null.", "null")
        gti = to_int(body["group_type_index"])
        if gti is None:
            raise validation("group_type_index", "A valid integer is required.")
        if not 0 <= gti <= 4:
            raise validation("group_type_index", "Ensure this value is less than or equal to 4."
                             if gti > 4 else "Ensure this value is greater than or equal to 0.",
                             "max_value" if gti > 4 else "min_value")
        if "group_key" not in body:
            raise validation("group_key", "This field is required.", "required")
        key = body["group_key"]
        if key is None:
            raise validation("group_key", "This field may not be null.", "null")
        if not isinstance(key, (str, int, float)) or isinstance(key, bool):
            raise validation("group_key", "Not a valid string.")
        key = str(key)
        if not key.strip():
            raise validation("group_key", "This field may not be blank.", "blank")
        if len(key) > GROUP_KEY_MAX:
            raise validation("group_key", "Ensure this field has no more than 400 characters.",
                             "max_length")
        props = body.get("group_properties") or {}
        if not isinstance(props, dict):
            raise validation("group_properties", "Value must be valid JSON.")
        team = req.team["id"]
        gid = _group_id(team, gti, key)
        if gid in self.data["groups"]:
            raise validation("detail", "A group with this key already exists")
        group = self._new_group(team, gti, key, props, req.now)
        for name in props:
            self.log_activity(team, "Group", str(group["pk"]), "create_group", req.user,
                              {"name": name, "changes": [{"type": "Group", "action": "created",
                                                          "field": name, "before": None,
                                                          "after": props[name]}]})
        return 201, self._group_out(group)

    def _new_group(self, team: int, gti: int, key: str, props: dict, now: float) -> dict:
        self.data["group_types"].setdefault(str(team), {}).setdefault(str(gti), f"type_{gti}")
        group = {"team": team, "group_type_index": gti, "group_key": key,
                 "group_properties": dict(props), "created_at": now,
                 "created_at_us": int(now * 1_000_000), "pk": self.next_id("group")}
        self.data["groups"][_group_id(team, gti, key)] = group
        self._index.pop((team, gti), None)
        return group

    def find_group(self, req: Request) -> tuple[int, Any]:
        group = self._lookup_group(req)
        return 200, {**self._group_out(group), "notebook": None}

    def _require_type_mapping(self, team: int, gti: int) -> None:
        if str(gti) not in self.data["group_types"].get(str(team), {}):
            raise not_found()

    def update_group_property(self, req: Request) -> tuple[int, Any]:
        group = self._lookup_group(req)
        body = req.body if isinstance(req.body, dict) else {}
        key = body.get("key")
        if not isinstance(key, str) or not key:
            raise validation("key", "This field is required.")
        if "value" not in body or body["value"] is None:
            raise validation("value", "This field is required.")
        self._require_type_mapping(group["team"], group["group_type_index"])
        existed = key in group["group_properties"]
        before = group["group_properties"].get(key)
        group["group_properties"][key] = body["value"]
        self.log_activity(group["team"], "Group", str(group["pk"]),
                          "update_property" if existed else "create_property", req.user,
                          {"name": key, "changes": [{"type": "Group", "action":
                                                     "changed" if existed else "created",
                                                     "field": key, "before": before,
                                                     "after": body["value"]}]})
        return 200, self._group_out(group)

    def delete_group_property(self, req: Request) -> tuple[int, Any]:
        group = self._lookup_group(req)
        body = req.body if isinstance(req.body, dict) else {}
        name = body.get("$unset")
        if not isinstance(name, str):
            raise validation("$unset", "This field is required and must be a string (the "
                             "property name to delete).")
        self._require_type_mapping(group["team"], group["group_type_index"])
        if name not in group["group_properties"]:
            raise validation("$unset", f"Property '{name}' does not exist on this group.")
        before = group["group_properties"].pop(name)
        self.log_activity(group["team"], "Group", str(group["pk"]), "update_property", req.user,
                          {"name": name, "changes": [{"type": "Group", "action": "deleted",
                                                      "field": name, "before": before,
                                                      "after": None}]})
        return 200, self._group_out(group)

    def get_group_activity(self, req: Request) -> tuple[int, Any]:
        group = self._lookup_group(req)
        limit = to_int(req.query.get("limit", "10"))
        page = to_int(req.query.get("page", "1"))
        if limit is None or limit < 1:
            raise validation("limit", "A valid integer is required.")
        if page is None or page < 1:
            raise validation("page", "A valid integer is required.")
        entries = self.data["activity"].get(f"{group['team']}:Group:{group['pk']}", [])
        ordered = sorted(entries, key=lambda e: e["_seq"], reverse=True)
        chunk = ordered[(page - 1) * limit: page * limit]

        def link(p: int) -> str:
            params = {"group_type_index": group["group_type_index"],
                      "group_key": group["group_key"], "page": p, "limit": limit}
            return f"{req.base_url}{req.path}?{urlencode(params)}"

        return 200, {
            "results": [{k: v for k, v in e.items() if k != "_seq"} for e in chunk],
            "next": link(page + 1) if page * limit < len(ordered) else None,
            "previous": link(page - 1) if page > 1 else None,
            "total_count": len(ordered),
        }

    def list_related_groups(self, req: Request) -> tuple[int, Any]:
        actor = req.query.get("id")
        if not actor:
            raise validation("id", "This field is required.", "required")
        raw = req.query.get("group_type_index")
        if raw not in (None, ""):
            gti = to_int(raw)
            if gti is None or not 0 <= gti < 5:
                raise validation("group_type_index",
                                 "group_type_index is required to be at least 0 and less than 5")
            source = f"{req.team['id']}:{gti}:{actor}"
        else:
            source = f"{req.team['id']}:person:{actor}"
        out = []
        for ref in self.data["related"].get(source, []):
            group = self.data["groups"].get(_group_id(req.team["id"], ref["group_type_index"],
                                                      ref["group_key"]))
            if group is None:
                continue
            out.append({"type": "group", "id": group["group_key"],
                        "group_key": group["group_key"],
                        "group_type_index": group["group_type_index"],
                        "created_at": iso(group["created_at"]),
                        "properties": dict(group["group_properties"]),
                        "matched_recordings": [], "value_at_data_point": None})
        return 200, out

    def list_group_property_definitions(self, req: Request) -> tuple[int, Any]:
        if not self.config.property_definitions_route:
            raise not_found()
        counts: dict[int, dict[str, int]] = {}
        for group in self.data["groups"].values():
            if group["team"] != req.team["id"]:
                continue
            bucket = counts.setdefault(group["group_type_index"], {})
            for name in group["group_properties"]:
                bucket[name] = bucket.get(name, 0) + 1
        return 200, {str(gti): [{"name": n, "count": c} for n, c in
                                sorted(b.items(), key=lambda x: (-x[1], x[0]))]
                     for gti, b in sorted(counts.items())}

    def list_group_property_values(self, req: Request) -> tuple[int, Any]:
        gti = self._required_query_int(req, "group_type_index")
        key = req.query.get("key")
        if not key:
            raise validation("key", "This query parameter is required.")
        needle = (req.query.get("value") or "").lower()
        counts: dict[str, int] = {}
        for group in self._team_groups(req.team["id"], gti):
            if key not in group["group_properties"]:
                continue
            value = group["group_properties"][key]
            text = value if isinstance(value, str) else json.dumps(value)
            if needle and needle not in text.lower():
                continue
            counts[text] = counts.get(text, 0) + 1
        rows = sorted(counts.items(), key=lambda x: (-x[1], x[0]))[:20]
        return 200, {"results": [{"name": n, "count": c} for n, c in rows], "refreshing": False}

    # -- sharing ---------------------------------------------------------------------------

    def _resource(self, req: Request) -> str:
        kind = req.params["resource"]
        rid = req.params["resource_id"]
        team = req.team["id"]
        if kind == "insights" and rid not in self.data["insights"].get(str(team), {}):
            raise not_found("Insight not found.")
        if kind == "dashboards" and rid not in self.data["dashboards"].get(str(team), {}):
            raise not_found("Dashboard not found.")
        return f"{team}:{kind}:{rid}"

    def _active_config(self, resource: str) -> dict | None:
        rows = [c for c in self.data["sharing"].values()
                if c["resource"] == resource and c["expires_at"] is None]
        return max(rows, key=lambda c: c["id"]) if rows else None

    def _passwords(self, config_id: int) -> list[dict]:
        return sorted((p for p in self.data["share_passwords"].values()
                       if p["config"] == config_id and p["is_active"]), key=lambda p: p["id"])

    def _config_out(self, config: dict | None) -> dict:
        if config is None:
            return {"created_at": None, "enabled": False,
                    "access_token": _new_token(), "settings": None, "password_required": False,
                    "share_passwords": [], "user_access_level": "editor"}
        return {
            "user_access_level": "editor",
            "created_at": iso(config["created_at"]), "enabled": config["enabled"],
            "access_token": config["access_token"], "settings": config["settings"],
            "password_required": config["password_required"],
            "share_passwords": [
                {"id": p["id"], "created_at": iso(p["created_at"]), "note": p["note"],
                 "created_by_email": p["created_by_email"], "is_active": True}
                for p in self._passwords(config["id"])
            ],
        }

    def _new_config(self, resource: str, now: float, *, enabled: bool = False,
                    settings: dict | None = None, password_required: bool = False) -> dict:
        config = {"id": self.next_id("config"), "resource": resource,
                  "access_token": _new_token(), "enabled": enabled, "settings": settings,
                  "password_required": password_required, "created_at": now,
                  "expires_at": None}
        self.data["sharing"][str(config["id"])] = config
        return config

    def _check_edit(self, req: Request) -> None:
        body = req.body if isinstance(req.body, dict) else {}
        if lax_bool(body.get("enabled")) and not self._org(req.team).get(
                "public_sharing_allowed", self.config.public_sharing_allowed):
            raise forbidden("Public sharing is disabled for this organization.")

    def _org(self, team: dict) -> dict:
        return self.data["organizations"][team["organization"]]

    def _advanced(self, team: dict) -> bool:
        return self._org(team).get("advanced_permissions", self.config.advanced_permissions)

    def _adopt_legacy_token(self, req: Request, resource: str,
                            config: dict | None) -> dict | None:
        """SPEC §2.1: a dashboard's legacy share_token is adopted (and saved), without
        turning sharing on."""
        if req.params["resource"] != "dashboards":
            return config
        dashboard = self.data["dashboards"][str(req.team["id"])][req.params["resource_id"]]
        legacy = dashboard.get("share_token")
        if legacy and (config is None or config["access_token"] != legacy):
            config = config or self._new_config(resource, req.now)
            config["access_token"] = legacy
        return config

    def get_sharing(self, req: Request) -> tuple[int, Any]:
        resource = self._resource(req)
        config = self._adopt_legacy_token(req, resource, self._active_config(resource))
        return 200, self._config_out(config)

    def update_sharing(self, req: Request) -> tuple[int, Any]:
        resource = self._resource(req)
        self._check_edit(req)
        body = req.body if isinstance(req.body, dict) else {}
        changes: dict[str, Any] = {}
        if "enabled" in body:
            value = lax_bool(body["enabled"])
            if value is None:
                raise validation("enabled", "Must be a valid boolean.", "invalid")
            changes["enabled"] = value
        if "settings" in body:
            raw = body["settings"]
            if raw is not None and not isinstance(raw, dict):
                raise validation("settings", "Invalid settings format")
            if raw is not None:
                clean: dict[str, Any] = {}
                for name in SETTINGS_BOOL_KEYS:
                    if raw.get(name) is not None:
                        flag = lax_bool(raw[name])
                        if flag is None:
                            raise validation("settings", "Invalid settings format")
                        clean[name] = flag
                if raw.get("theme") is not None:
                    clean["theme"] = str(raw["theme"])
                raw = clean
            changes["settings"] = raw
        if "password_required" in body:
            value = lax_bool(body["password_required"])
            if value is None:
                raise validation("password_required", "Must be a valid boolean.", "invalid")
            if value and not self._advanced(req.team):
                raise ApiError(403, {"error": "Sharing with password requires the Advanced "
                                     "Permissions feature"})
            changes["password_required"] = value
        config = self._adopt_legacy_token(req, resource, self._active_config(resource))
        reenabling = changes.get("enabled") is True and not (config and config["enabled"])
        config = config or self._new_config(resource, req.now)
        config.update(changes)
        if reenabling:
            # SPEC §2.2: turning sharing on issues a new link; every earlier token of the
            # resource dies at once, one in its refresh grace period included.
            for other in self.data["sharing"].values():
                if other["resource"] == resource and other is not config and (
                        other["expires_at"] is None or other["expires_at"] > req.now):
                    other["expires_at"] = req.now
            config["access_token"] = _new_token()
        if req.params["resource"] == "dashboards":
            # The PATCH's token is the live one: the legacy token is never adopted again.
            self.data["dashboards"][str(req.team["id"])][req.params["resource_id"]][
                "share_token"] = None
        if "enabled" in changes and req.params["resource"] != "session_recordings":
            self.log_activity(req.team["id"], req.params["resource"][:-1].capitalize(),
                              req.params["resource_id"],
                              "sharing enabled" if changes["enabled"] else "sharing disabled",
                              req.user, {"changes": []})
        return 200, self._config_out(config)

    def refresh_sharing(self, req: Request) -> tuple[int, Any]:
        resource = self._resource(req)
        self._check_edit(req)
        active = [c for c in self.data["sharing"].values()
                  if c["resource"] == resource and c["expires_at"] is None]
        current = self._active_config(resource)
        for config in active:
            config["expires_at"] = req.now + SHARING_GRACE_SECONDS
        if req.params["resource"] == "dashboards":  # SPEC §2.3: the legacy token is cleared
            self.data["dashboards"][str(req.team["id"])][req.params["resource_id"]][
                "share_token"] = None
        new = self._new_config(
            resource, req.now,
            enabled=current["enabled"] if current else False,
            settings=current["settings"] if current else None,
            password_required=current["password_required"] if current else False)
        if current and current["password_required"]:
            for pw in self._passwords(current["id"]):
                copy = {**pw, "id": self.next_id("password"), "config": new["id"],
                        "created_at": req.now}
                self.data["share_passwords"][str(copy["id"])] = copy
        return 200, self._config_out(new)

    def create_sharing_password(self, req: Request) -> tuple[int, Any]:
        resource = self._resource(req)
        self._check_edit(req)
        config = self._active_config(resource)
        if config is None or not config["password_required"]:
            raise ApiError(400, {"error": "Password protection must be enabled before creating "
                                 "passwords"})
        if not self._advanced(req.team):
            raise ApiError(403, {"error": "Password management requires the Advanced "
                                 "Permissions feature"})
        body = req.body if isinstance(req.body, dict) else {}
        raw = body.get("raw_password")
        if raw is not None and not isinstance(raw, str):
            raise validation("raw_password", "Not a valid string.")
        note = body.get("note", "")
        if note is not None and not isinstance(note, str):
            raise validation("note", "Not a valid string.")
        if note and len(note) > 100:
            raise validation("note", "Ensure this field has no more than 100 characters.",
                             "max_length")
        if raw:
            if len(raw) < 8:
                raise validation("raw_password", "Password must be at least 8 characters long.")
        else:
            raw = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        row = {"id": self.next_id("password"), "config": config["id"],
               "hash": hash_password(raw), "note": note or "",
               "created_by_email": req.user["email"], "created_at": req.now, "is_active": True}
        self.data["share_passwords"][str(row["id"])] = row
        return 201, {"id": row["id"], "password": raw, "note": row["note"],
                     "created_at": iso(row["created_at"]),
                     "created_by_email": row["created_by_email"]}

    def delete_sharing_password(self, req: Request) -> tuple[int, Any]:
        resource = self._resource(req)
        self._check_edit(req)
        if not self._advanced(req.team):
            raise ApiError(403, {"error": "Password management requires the Advanced "
                                 "Permissions feature"})
        config = self._active_config(resource)
        password_id = to_int(req.params["password_id"])
        if password_id is None:
            raise server_error()  # SPEC §2.5: a non-numeric id is an unhandled error
        match = [p for p in self._passwords(config["id"])] if config else []
        match = [p for p in match if p["id"] == password_id]
        if not match:
            raise not_found("Password not found")
        match[0]["is_active"] = False
        return 204, None

    def view_share(self, token: str, password: str | None) -> tuple[int, Any]:
        """The public viewer (SPEC §2.6): 200 when the link works and the password fits."""
        now = self.now()
        for config in self.data["sharing"].values():
            if config["access_token"] != token:
                continue
            if not config["enabled"] or (config["expires_at"] and config["expires_at"] <= now):
                break
            team = self.data["projects"].get(config["resource"].split(":", 1)[0])
            if team and not self._org(team).get("public_sharing_allowed",
                                                self.config.public_sharing_allowed):
                break  # SPEC §2.6: every share of the organization answers 404
            if not config["password_required"]:
                return 200, {"shared": True}
            if password is None:
                return 401, {"error": "Password required"}
            if any(check_password(password, p["hash"]) for p in self._passwords(config["id"])):
                return 200, {"shareToken": base64.urlsafe_b64encode(
                    secrets.token_bytes(24)).decode()}
            return 401, {"error": "Incorrect password"}
        return 404, {"type": "invalid_request", "code": "not_found", "detail": "Not found.",
                     "attr": None}

    # -- project secret API keys -------------------------------------------------------------

    def _key_out(self, key: dict, value: str | None = None) -> dict:
        user = self.data["users"].get(str(key["created_by"]))
        return {"id": key["id"], "label": key["label"], "value": value,
                "mask_value": key["mask_value"], "created_at": iso(key["created_at"]),
                "created_by": self.user_basic(user) if user else None,
                "last_used_at": iso(key["last_used_at"]),
                "last_rolled_at": iso(key["last_rolled_at"]), "scopes": list(key["scopes"])}

    def _team_keys(self, team: int) -> list[dict]:
        return [k for k in self.data["project_secret_api_keys"].values() if k["team"] == team]

    def _require_admin(self, req: Request) -> None:
        if self.org_level(req.user, req.team) not in ("admin", "owner"):
            raise forbidden("You don't have sufficient permissions in the project.")

    @staticmethod
    def _validate_label(body: dict, *, required: bool) -> str | None:
        if "label" not in body:
            if required:
                raise validation("label", "This field is required.", "required")
            return None
        label = body["label"]
        if label is None:
            raise validation("label", "This field may not be null.", "null")
        if isinstance(label, bool) or not isinstance(label, (str, int, float)):
            raise validation("label", "Not a valid string.")
        label = str(label)  # a DRF CharField stores a number as its text (SPEC §3.2)
        if not label.strip():
            raise validation("label", "This field may not be blank.", "blank")
        if len(label) > PSAK_LABEL_MAX:
            raise validation("label", "Ensure this field has no more than 40 characters.",
                             "max_length")
        return label.strip()

    @staticmethod
    def _validate_scopes(body: dict, *, required: bool) -> list[str] | None:
        if "scopes" not in body:
            if required:
                raise validation("scopes", "This field is required.", "required")
            return None
        scopes = body["scopes"]
        if scopes is None:
            raise validation("scopes", "This field may not be null.", "null")
        if not isinstance(scopes, list):
            raise validation("scopes", f'Expected a list of items but got type '
                             f'"{type(scopes).__name__}".', "not_a_list")
        if not scopes:
            raise validation("scopes", "This list may not be empty.", "empty")
        for scope in scopes:
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
        return list(dict.fromkeys(scopes))

    def new_key(self, team: int, label: str, scopes: list[str], user_id: int, now: float,
                *, value: str | None = None) -> tuple[dict, str]:
        value = value or "phs_" + base62(35)
        key = {"id": base62(32), "team": team, "label": label, "secure_value": hash_key(value),
               "mask_value": f"{value[:4]}...{value[-4:]}", "created_at": now,
               "created_by": user_id, "last_used_at": None, "last_rolled_at": None,
               "scopes": scopes}
        self.data["project_secret_api_keys"][key["id"]] = key
        return key, value

    def _get_key(self, req: Request) -> dict:
        key = self.data["project_secret_api_keys"].get(req.params["key_id"])
        if key is None or key["team"] != req.team["id"]:
            raise not_found()
        return key

    def list_project_secret_api_keys(self, req: Request) -> tuple[int, Any]:
        keys = sorted(self._team_keys(req.team["id"]), key=lambda k: k["created_at"],
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
            "results": [self._key_out(k) for k in keys[offset: offset + limit]],
        }

    def create_project_secret_api_key(self, req: Request) -> tuple[int, Any]:
        self._require_admin(req)
        body = req.body if isinstance(req.body, dict) else {}
        label = self._validate_label(body, required=True)
        scopes = self._validate_scopes(body, required=True)
        team = req.team["id"]
        if len(self._team_keys(team)) >= PSAK_MAX_PER_TEAM:
            raise validation(None, "You can only have 50 project secret API keys. Remove an "
                             "existing key before creating a new one.")
        if any(k["label"] == label for k in self._team_keys(team)):
            raise validation(None, f"Project secret API key with label '{label}' already exists.")
        key, value = self.new_key(team, label, scopes, req.user["id"], req.now)
        self.log_activity(team, "ProjectSecretAPIKey", key["id"], "created", req.user,
                          {"name": label, "changes": []})
        return 201, self._key_out(key, value)

    def get_project_secret_api_key(self, req: Request) -> tuple[int, Any]:
        return 200, self._key_out(self._get_key(req))

    def update_project_secret_api_key(self, req: Request) -> tuple[int, Any]:
        return self._write_key(req, partial=True)

    def replace_project_secret_api_key(self, req: Request) -> tuple[int, Any]:
        return self._write_key(req, partial=False)

    def _write_key(self, req: Request, *, partial: bool) -> tuple[int, Any]:
        self._require_admin(req)
        key = self._get_key(req)
        body = req.body if isinstance(req.body, dict) else {}
        label = self._validate_label(body, required=not partial)
        scopes = self._validate_scopes(body, required=not partial)
        if label is not None and label != key["label"] and any(
                k["label"] == label for k in self._team_keys(key["team"])):
            raise server_error()  # SPEC §3.4: the unique constraint surfaces as a 500
        if label is not None:
            key["label"] = label
        if scopes is not None:
            key["scopes"] = scopes
        self.log_activity(key["team"], "ProjectSecretAPIKey", key["id"], "updated", req.user,
                          {"name": key["label"], "changes": []})
        return 200, self._key_out(key)

    def delete_project_secret_api_key(self, req: Request) -> tuple[int, Any]:
        self._require_admin(req)
        key = self._get_key(req)
        del self.data["project_secret_api_keys"][key["id"]]
        self.log_activity(key["team"], "ProjectSecretAPIKey", key["id"], "deleted", req.user,
                          {"name": key["label"], "changes": []})
        return 204, None

    def roll_project_secret_api_key(self, req: Request) -> tuple[int, Any]:
        self._require_admin(req)
        key = self._get_key(req)
        value = "phs_" + base62(35)
        key["secure_value"] = hash_key(value)
        key["mask_value"] = f"{value[:4]}...{value[-4:]}"
        key["last_rolled_at"] = req.now
        self.log_activity(key["team"], "ProjectSecretAPIKey", key["id"], "updated", req.user,
                          {"name": key["label"], "changes": [
                              {"type": "ProjectSecretAPIKey", "action": "changed",
                               "field": "mask_value"},
                              {"type": "ProjectSecretAPIKey", "action": "changed",
                               "field": "last_rolled_at"}]})
        return 200, self._key_out(key, value)

    def find_project_secret_key(self, team: int, value: str) -> dict | None:
        digest = hash_key(value)
        for key in self._team_keys(team):
            if secrets.compare_digest(key["secure_value"], digest):
                return key
        return None

    def local_evaluation(self, req: Request) -> tuple[int, Any]:
        flags = [f for f in self.data["feature_flags"].get(str(req.team["id"]), [])
                 if f.get("active", True)]
        mapping = self.data["group_types"].get(str(req.team["id"]), {})
        return 200, {"flags": flags, "group_type_mapping": mapping, "cohorts": {}}

    # -- persistence -------------------------------------------------------------------------

    def dump(self) -> str:
        with self.lock:
            return json.dumps({"data": self.data, "clock_offset": self.clock_offset})

    def load(self, text: str) -> None:
        saved = json.loads(text)
        with self.lock:
            self.data = saved["data"]
            self.clock_offset = saved.get("clock_offset", 0.0)
            self._index.clear()


def _new_token() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(22)).decode().rstrip("=")


def _encode_cursor(created_us: int, key: str) -> str:
    raw = json.dumps({"c": created_us, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str | None) -> dict | None:
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(value, dict) and isinstance(value.get("c"), int) and isinstance(
                value.get("k"), str):
            return value
    except (ValueError, TypeError):
        pass
    return None  # SPEC §1.1: an invalid cursor silently means the first page


Handler = Callable[[PostHogState, Request], tuple[int, Any]]
