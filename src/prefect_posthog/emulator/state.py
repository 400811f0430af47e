"""The emulated PostHog: its data, and the behaviour of every endpoint of the slice.

`PostHogState` holds plain JSON-able data (saved to and loaded from a file) and takes
each area's endpoint behaviour from a module of its own, as moto splits services:
`groups`, `group_types`, `sharing`, `project_secret_api_keys` (and `capture` for ingestion, `query`
for the project and HogQL). Each public handler is named as the client method that
calls it and returns ``(status, body)`` or raises `ApiError`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from prefect_posthog.emulator.common import (
    Config,
    default_state,
    iso,
)
from prefect_posthog.emulator.group_types import GroupTypesModel
from prefect_posthog.emulator.groups import GroupsModel
from prefect_posthog.emulator.project_secret_api_keys import ProjectSecretAPIKeysModel
from prefect_posthog.emulator.sharing import SharingModel


@dataclass
class PostHogState(GroupsModel, GroupTypesModel, SharingModel, ProjectSecretAPIKeysModel):
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
