"""Groups as the store holds them, and the reads every area needs (lookups, orders)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

from prefect_posthog.emulator.common import iso
from prefect_posthog.emulator.store import PostHogState


def group_id(team: int, gti: int, key: str) -> str:
    """The group's key in ``data["groups"]`` (and in the saved state)."""
    return json.dumps([team, gti, key])


def group_out(group: dict) -> dict:
    """PostHog's GroupSerializer."""
    return {"group_type_index": group["group_type_index"], "group_key": group["group_key"],
            "group_properties": dict(group["group_properties"]),
            "created_at": iso(group["created_at"])}


def get_group(store: PostHogState, team: int, gti: int, key: str) -> dict | None:
    return store.data["groups"].get(group_id(team, gti, key))


def new_group(store: PostHogState, team: int, gti: int, key: str, props: dict,
              now: float) -> dict:
    """Create a group (its type gets a placeholder name when it has none)."""
    store.data["group_types"].setdefault(str(team), {}).setdefault(str(gti), f"type_{gti}")
    group = {"team": team, "group_type_index": gti, "group_key": key,
             "group_properties": dict(props), "created_at": now,
             "created_at_us": int(now * 1_000_000), "pk": store.next_id("group")}
    store.data["groups"][group_id(team, gti, key)] = group
    store.indexes.pop(("groups", team, gti), None)
    return group


def type_groups(store: PostHogState, team: int, gti: int) -> list[dict]:
    """Groups of one type, in no particular order."""
    return [g for g in store.data["groups"].values()
            if g["team"] == team and g["group_type_index"] == gti]


def team_groups(store: PostHogState, team: int) -> Iterable[dict]:
    return (g for g in store.data["groups"].values() if g["team"] == team)


def by_created(store: PostHogState, team: int, gti: int) -> list[dict]:
    """Groups of one type in ascending (created_at, key) order, cached until a create."""
    index = store.indexes.get(("groups", team, gti))
    if index is None:
        index = sorted(type_groups(store, team, gti),
                       key=lambda g: (g["created_at_us"], g["group_key"]))
        store.indexes[("groups", team, gti)] = index
    return index


def by_key(store: PostHogState, team: int, gti: int) -> list[dict]:
    """Groups of one type ordered by key (HogQL's ``order by key``)."""
    return sorted(type_groups(store, team, gti), key=lambda g: g["group_key"])


def encode_cursor(created_us: int, key: str) -> str:
    raw = json.dumps({"c": created_us, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The list's keyset cursor (`ee/clickhouse/views/groups.py`): an invalid one, or an old
    one keyed on ``i`` instead of ``k``, silently means the first page; a millisecond ``c``
    from older links is read as microseconds."""
    if not cursor:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(value, dict) or "k" not in value:
            return None
        created = int(value.get("c", 0))
        if 0 < created < 10**15:
            created *= 1000
        return {"c": created, "k": str(value["k"])}
    except (ValueError, TypeError):
        return None
