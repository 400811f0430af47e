"""Project secret API keys (SPEC §3): list, create, read, update, delete, roll, and the
flag local evaluation through which a key value is checked."""

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
    validation,
)

PSAK_LABEL_MAX = 40
PSAK_MAX_PER_TEAM = 50
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


class ProjectSecretAPIKeysModel:
    """Endpoint behaviour mixed into `PostHogState`, whose data, clock and ids it uses."""

    data: dict[str, Any]

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
