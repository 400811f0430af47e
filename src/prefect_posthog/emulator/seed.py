"""Seeding the emulator: the admin ``/_emulator/seed`` body and the demo data set."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from prefect_posthog.emulator.common import ApiError, hash_password
from prefect_posthog.emulator.group_models import new_group, new_groups
from prefect_posthog.emulator.project_secret_api_keys import new_key
from prefect_posthog.emulator.sharing import active_config, new_config
from prefect_posthog.emulator.store import PostHogState

Out = dict[str, Any]


def _ts(spec: dict, now: float, field: str) -> float | None:
    """``field`` as ISO text or epoch seconds, else ``<field>_days_ago``, else ``None``."""
    value = spec.get(field)
    if value is None:
        days = spec.get(f"{field.removesuffix('_at')}_days_ago")
        return None if days is None else now - float(days) * 86400
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def _bad(detail: str) -> ApiError:
    return ApiError(400, {"type": "validation_error", "code": "invalid_input",
                          "detail": detail, "attr": None})


def _organizations(state: PostHogState, items: list, now: float, out: Out) -> None:
    for org in items:
        entry = state.data["organizations"].setdefault(org["id"], {"id": org["id"],
                                                                   "members": {}})
        entry["name"] = org.get("name", org["id"])
        for flag in ("advanced_permissions", "public_sharing_allowed",
                     "members_can_use_personal_api_keys"):
            if flag in org:
                entry[flag] = bool(org[flag])
        entry["members"].update({str(k): v for k, v in org.get("members", {}).items()})


def _projects(state: PostHogState, items: list, now: float, out: Out) -> None:
    data = state.data
    for project in items:
        if project.get("organization", "org-1") not in data["organizations"]:
            raise _bad(f"unknown organization {project.get('organization')!r}")
        data["projects"][str(project["id"])] = {
            "id": int(project["id"]), "organization": project.get("organization", "org-1"),
            "name": project.get("name", f"Project {project['id']}"),
            "api_token": project.get("api_token", f"phc_project_{project['id']}")}
        data["group_types"].setdefault(str(project["id"]), {})
        data["feature_flags"].setdefault(str(project["id"]), [])


def _users(state: PostHogState, items: list, now: float, out: Out) -> None:
    for user in items:
        uid = int(user.get("id") or state.next_id("user"))
        state.data["users"][str(uid)] = {
            "id": uid, "uuid": str(uuid.uuid4()), "distinct_id": f"user-{uid}",
            "first_name": user.get("first_name", f"User {uid}"), "last_name": "",
            "email": user.get("email", f"user{uid}@example.com"),
            "current_team": int(user.get("current_team", 1))}
        org = state.data["organizations"][user.get("organization", "org-1")]
        org["members"][str(uid)] = user.get("org_level", "member")


def _personal_api_keys(state: PostHogState, items: list, now: float, out: Out) -> None:
    for key in items:
        state.add_personal_api_key(key["value"], key.get("scopes") or ["*"],
                                   user_id=int(key.get("user", 1)),
                                   scoped_teams=key.get("scoped_teams"),
                                   label=key.get("label", "seeded"))


def _group_types(state: PostHogState, items: list, now: float, out: Out) -> None:
    for gt in items:
        state.data["group_types"].setdefault(str(gt.get("project", 1)), {})[
            str(gt["group_type_index"])] = gt.get("name", f"type_{gt['group_type_index']}")


def _groups(state: PostHogState, items: list, now: float, out: Out) -> None:
    for i, group in enumerate(items):
        # Without a created_at, groups are a millisecond apart, in the order given.
        created = _ts(group, now, "created_at") or now - (len(items) - i) * 1e-3
        new_group(state, int(group.get("project", 1)), int(group["group_type_index"]),
                  str(group["group_key"]), dict(group.get("group_properties") or {}), created)


def _generate_groups(state: PostHogState, items: list | dict, now: float, out: Out) -> None:
    """Groups described, not listed: ``count`` keys from ``key_format`` (``{i}`` is the
    number, from ``start``), all with the same ``group_properties``."""
    for spec in [items] if isinstance(items, dict) else items:
        count, start = int(spec["count"]), int(spec.get("start", 0))
        key_format = str(spec.get("key_format", "group-{i}"))
        if "{i" not in key_format:
            raise _bad("generate_groups.key_format must use {i}, e.g. 'company-{i:07d}'")
        base = int(now * 1_000_000) - count * 1000  # a millisecond apart, ending now
        created = new_groups(state, int(spec.get("project", 1)), int(spec["group_type_index"]),
                             (key_format.format(i=i) for i in range(start, start + count)),
                             json.dumps(dict(spec.get("group_properties") or {})),
                             (base + n * 1000 for n in range(count)))
        out.setdefault("generated_groups", 0)
        out["generated_groups"] += created


def _objects(kind: str) -> Callable[[PostHogState, list, float, Out], None]:
    def seed_objects(state: PostHogState, items: list, now: float, out: Out) -> None:
        for item in items:
            state.data[kind].setdefault(str(item.get("project", 1)), {})[str(item["id"])] = {
                "id": int(item["id"]), "name": item.get("name", f"{kind[:-1]} {item['id']}"),
                "share_token": item.get("share_token")}
    return seed_objects


_SEGMENT = {"insight": "insights", "dashboard": "dashboards",
            "session_recording": "session_recordings"}


def _sharing(state: PostHogState, items: list, now: float, out: Out) -> None:
    for share in items:
        resource = f"{share.get('project', 1)}:{_SEGMENT[share['resource']]}:{share['id']}"
        config = (None if share.get("new_config") else active_config(state, resource)
                  ) or new_config(state, resource, now)
        config["enabled"] = bool(share.get("enabled", True))
        if "settings" in share:
            config["settings"] = share["settings"]
        if share.get("expired"):
            config["expires_at"] = now - 60
        config["password_required"] = bool(share.get("password_required", False))
        if share.get("access_token"):
            config["access_token"] = share["access_token"]
        for raw in share.get("passwords", []):
            row = {"id": state.next_id("password"), "config": config["id"],
                   "hash": hash_password(raw), "note": share.get("note", "seeded"),
                   "created_by_email": "owner@example.com", "created_at": now,
                   "is_active": True}
            state.data["share_passwords"][str(row["id"])] = row
            out["share_passwords"].append({"resource": resource, "id": row["id"]})


def _project_secret_api_keys(state: PostHogState, items: list, now: float, out: Out) -> None:
    for item in items:
        key, value = new_key(state, int(item.get("project", 1)), item["label"],
                             list(item.get("scopes") or ["feature_flag:read"]),
                             int(item.get("user", 1)), _ts(item, now, "created_at") or now,
                             value=item.get("value"))
        key["last_rolled_at"] = _ts(item, now, "last_rolled_at")
        out["project_secret_api_keys"].append({"id": key["id"], "label": key["label"],
                                               "value": value})


def _feature_flags(state: PostHogState, items: list, now: float, out: Out) -> None:
    for flag in items:
        flags = state.data["feature_flags"].setdefault(str(flag.get("project", 1)), [])
        flags.append({"id": len(flags) + 1, "key": flag["key"], "name": flag.get("name", ""),
                      "active": bool(flag.get("active", True)),
                      "filters": dict(flag.get("filters") or {})})


def _persons(state: PostHogState, items: list, now: float, out: Out) -> None:
    for person in items:
        state.data.setdefault("persons", {})[f"{person.get('project', 1)}:{person['uuid']}"] = {
            "uuid": str(person["uuid"]), "distinct_ids": list(person["distinct_ids"]),
            "properties": dict(person.get("properties") or {}),
            "created_at": _ts(person, now, "created_at") or now}


def _related(state: PostHogState, items: list, now: float, out: Out) -> None:
    for rel in items:
        src, project = rel["from"], rel.get("project", 1)
        source = (f"{project}:person:{src['person']}" if "person" in src else
                  f"{project}:{src['group_type_index']}:{src['group_key']}")
        state.data["related"].setdefault(source, []).extend(rel["to"])


# In this order: organizations before their projects and users, and so on.
SEEDERS: dict[str, Callable[[PostHogState, list, float, Out], None]] = {
    "organizations": _organizations, "projects": _projects, "users": _users,
    "personal_api_keys": _personal_api_keys, "group_types": _group_types, "groups": _groups,
    "generate_groups": _generate_groups,
    "insights": _objects("insights"), "dashboards": _objects("dashboards"),
    "sharing": _sharing, "project_secret_api_keys": _project_secret_api_keys,
    "feature_flags": _feature_flags, "persons": _persons, "related": _related,
}


def apply_seed(state: PostHogState, spec: dict[str, Any]) -> dict[str, Any]:
    """Add the objects described by ``spec``; return ids and generated secrets.

    Keys of ``spec`` (all optional): ``organizations``, ``projects``, ``users``,
    ``personal_api_keys``, ``group_types``, ``groups``, ``generate_groups``, ``insights``,
    ``dashboards``, ``sharing``, ``project_secret_api_keys``, ``feature_flags`` (``key``,
    ``name``, ``active``, ``filters`` as PostHog stores them), ``persons``, ``related``
    (``to``: groups by type and key, or ``{"person": uuid}``).

    ``generate_groups`` seeds many groups without listing them (a million would be a
    150 MB body), one spec or a list::

        {"generate_groups": {"group_type_index": 0, "count": 1000000,
                             "key_format": "company-{i:07d}", "start": 0, "project": 1,
                             "group_properties": {"plan": "free"}}}

    Keys that already exist are skipped; the answer's ``generated_groups`` counts the new.
    """
    now = state.now()
    out: dict[str, Any] = {"project_secret_api_keys": [], "share_passwords": []}
    for name, seeder in SEEDERS.items():
        if name in spec:
            seeder(state, spec[name], now, out)
    return out


INDUSTRIES = ("software", "retail", "finance", "health", "education", "media", "logistics")
PLANS = ("free", "startup", "growth", "enterprise")


def demo_spec(groups: int = 3000, seed: int = 7) -> dict[str, Any]:
    """The demo data set: companies, insights, dashboards, keys and flags."""
    rng = random.Random(seed)
    return {
        "groups": [
            {"group_type_index": 0, "group_key": f"company-{i:05d}",
             "group_properties": {"name": f"Company {i}", "industry": rng.choice(INDUSTRIES),
                                  "plan": rng.choice(PLANS), "seats": rng.randint(1, 500)}}
            for i in range(groups)
        ],
        "insights": [{"id": i, "name": f"Weekly active users {i}"} for i in range(1, 6)],
        "dashboards": [{"id": i, "name": f"Board {i}"} for i in range(1, 4)],
        "sharing": [{"resource": "insight", "id": 1, "enabled": True,
                     "password_required": True, "passwords": ["demo-old-password"]}],
        "project_secret_api_keys": [
            {"label": "flags-backend", "scopes": ["feature_flag:read"], "created_days_ago": 120},
            {"label": "flags-edge", "scopes": ["feature_flag:read"], "created_days_ago": 10},
        ],
        "feature_flags": [{"key": "new-onboarding"}, {"key": "beta-dashboard", "active": False}],
    }
