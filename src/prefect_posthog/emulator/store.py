"""The store: everything the emulated PostHog holds, handed to every handler explicitly.

`PostHogState` is one backend in moto's sense: plain JSON-able ``data``, the groups (kept
in indexed tables, see `group_index`), the behaviour switches, the clock (which admin can
move), id counters and the lock every handler runs under. `dump` and `load` give the saved
form: ``data`` with the groups as ``"[team, index, key]"`` -> group objects.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from prefect_posthog.emulator.common import iso
from prefect_posthog.emulator.constants import (
    LEGACY_LOCAL_EVALUATION,
    QUERY_CONCURRENCY,
    QUERY_QUEUE_SECONDS,
)
from prefect_posthog.emulator.group_index import GroupStore


@dataclass
class Config:
    """Behaviour switches (``POST /_emulator/config``)."""

    advanced_permissions: bool = True
    public_sharing_allowed: bool = True
    property_definitions_route: bool = True
    # The flags quota is used up: the flag definitions answer 402.
    quota_limited: bool = False
    # Django's feature_flags/local_evaluation, which PostHog removed (#62229), still served.
    legacy_local_evaluation: bool = LEGACY_LOCAL_EVALUATION
    query_seconds: float = 0.0  # how long each API query runs
    query_queue_seconds: float = QUERY_QUEUE_SECONDS  # how long a 4th query waits for a slot
    query_concurrency: int = QUERY_CONCURRENCY  # API queries a team may run at once


def default_state() -> dict[str, Any]:
    """One organization, project 1 and its admin user; nothing else."""
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
        "activity": {},
        "related": {},
        "insights": {},
        "dashboards": {},
        "sharing": {},
        "share_passwords": {},
        "project_secret_api_keys": {},
        "feature_flags": {"1": []},
    }


@dataclass
class PostHogState:
    """All emulated data, the clock, id counters and the lock."""

    data: dict[str, Any] = field(default_factory=default_state)
    config: Config = field(default_factory=Config)
    clock_offset: float = 0.0
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    groups: GroupStore = field(default_factory=GroupStore, repr=False)

    def now(self) -> float:
        """The emulated time: the wall clock plus every ``/_emulator/clock`` advance."""
        return time.time() + self.clock_offset

    def next_id(self, kind: str) -> int:
        value = self.data["next_ids"][kind]
        self.data["next_ids"][kind] = value + 1
        return value

    # -- users, organizations, activity ---------------------------------------------------

    def add_personal_api_key(self, value: str, scopes: list[str] | None = None, *,
                             user_id: int = 1, scoped_teams: list[int] | None = None,
                             label: str = "emulator") -> None:
        self.data["personal_api_keys"][value] = {
            "label": label, "user": user_id, "scopes": scopes or ["*"],
            "scoped_teams": scoped_teams,
        }

    def org_level(self, user: dict, team: dict) -> str | None:
        """The user's level in the team's organization, ``None`` when not a member."""
        org = self.data["organizations"].get(team["organization"], {})
        return org.get("members", {}).get(str(user["id"]))

    def organization(self, team: dict) -> dict:
        return self.data["organizations"][team["organization"]]

    def user_basic(self, user: dict) -> dict:
        """PostHog's UserBasicSerializer."""
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
            return json.dumps({"data": {**self.data, "groups": self.groups.dump()},
                               "clock_offset": self.clock_offset})

    def load(self, text: str) -> None:
        saved = json.loads(text)
        with self.lock:
            self.data = saved["data"]
            self.groups = GroupStore.load(self.data.pop("groups", {}))
            self.clock_offset = saved.get("clock_offset", 0.0)

    def reset(self, config: Config) -> None:
        """Back to the empty project, keeping the personal API keys the emulator started with."""
        with self.lock:
            keys = dict(self.data["personal_api_keys"])
            self.data = default_state()
            self.data["personal_api_keys"] = keys
            self.groups = GroupStore()
            self.config = config
            self.clock_offset = 0.0
