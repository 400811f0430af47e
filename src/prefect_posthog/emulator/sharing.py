"""Sharing of insights, session recordings and dashboards (SPEC §2): configurations,
re-enabling and refresh, passwords, and the public viewer."""

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
    server_error,
    to_int,
    validation,
)

SHARING_GRACE_SECONDS = 300
SETTINGS_BOOL_KEYS = ("whitelabel", "noHeader", "showInspector", "legend", "detailed",
                      "hideExtraDetails")


def _new_token() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(22)).decode().rstrip("=")


class SharingModel:
    """Endpoint behaviour mixed into `PostHogState`, whose data, clock and ids it uses."""

    data: dict[str, Any]

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
        if legacy and any(c["access_token"] == legacy for c in self.data["sharing"].values()
                          if c is not config):
            # Already some config's token (an expired one, say): adopting it would collide
            # with the unique token; the active token stays and the legacy one follows it.
            dashboard["share_token"] = config["access_token"] if config else None
            return config
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
        for duplicate in self.data["sharing"].values():
            # A write collapses duplicate active configs of the resource to one.
            if (duplicate["resource"] == resource and duplicate is not config
                    and duplicate["expires_at"] is None):
                duplicate["expires_at"] = req.now
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

    def live_sharing_config(self, token: str) -> dict | None:
        """The enabled, unexpired config whose link is ``token``."""
        now = self.now()
        for config in self.data["sharing"].values():
            if config["access_token"] == token:
                live = config["enabled"] and not (config["expires_at"]
                                                  and config["expires_at"] <= now)
                return config if live else None
        return None

    def view_share(self, token: str, password: str | None) -> tuple[int, Any]:
        """The public viewer (SPEC §2.6): 200 when the link works and the password fits."""
        config = self.live_sharing_config(token)
        team = config and self.data["projects"].get(config["resource"].split(":", 1)[0])
        if team and not self._org(team).get("public_sharing_allowed",
                                            self.config.public_sharing_allowed):
            config = None  # SPEC §2.6: every share of the organization answers 404
        if config is None:
            return 404, {"type": "invalid_request", "code": "not_found", "detail": "Not found.",
                         "attr": None}
        if not config["password_required"]:
            return 200, {"shared": True}
        if password is None:
            return 401, {"error": "Password required"}
        if any(check_password(password, p["hash"]) for p in self._passwords(config["id"])):
            return 200, {"shareToken": base64.urlsafe_b64encode(secrets.token_bytes(24)).decode()}
        return 401, {"error": "Incorrect password"}
