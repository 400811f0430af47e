"""Groups as handlers see them: lookups, creation, PostHog's serializer and the list cursor."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prefect_posthog.emulator.common import iso
from prefect_posthog.emulator.group_index import Group

if TYPE_CHECKING:
    from prefect_posthog.emulator.store import PostHogState

__all__ = ["Group", "by_key", "decode_cursor", "encode_cursor", "get_group", "group_out",
           "new_group", "new_groups", "newest_before", "team_groups", "type_groups"]


def group_out(group: Group) -> dict:
    """PostHog's GroupSerializer."""
    return {"group_type_index": group.type_index, "group_key": group.key,
            "group_properties": group.props(), "created_at": iso(group.created_at)}


def get_group(store: PostHogState, team: int, gti: int, key: str) -> Group | None:
    return store.groups.get(team, gti, key)


def _ensure_type(store: PostHogState, team: int, gti: int) -> None:
    """A group of a type with no name gives the type a placeholder name."""
    store.data["group_types"].setdefault(str(team), {}).setdefault(str(gti), f"type_{gti}")


def new_group(store: PostHogState, team: int, gti: int, key: str, props: dict,
              now: float) -> Group:
    _ensure_type(store, team, gti)
    group = Group(team, gti, key, json.dumps(props), int(now * 1_000_000),
                  store.next_id("group"))
    store.groups.table(team, gti).add(group)
    return group


def new_groups(store: PostHogState, team: int, gti: int, keys: Iterator[str],
               properties: str, created_us: Iterator[int]) -> int:
    """Create many groups that share one properties text; return how many were new."""
    _ensure_type(store, team, gti)
    table = store.groups.table(team, gti)
    pk = store.data["next_ids"]["group"]
    created = 0
    for key, when in zip(keys, created_us, strict=False):
        if key not in table.rows:
            table.add(Group(team, gti, key, properties, when, pk + created))
            created += 1
    store.data["next_ids"]["group"] = pk + created
    return created


def type_groups(store: PostHogState, team: int, gti: int) -> Iterator[Group]:
    """Groups of one type, in no particular order."""
    table = store.groups.tables.get((team, gti))
    return iter(table.rows.values()) if table is not None else iter(())


def team_groups(store: PostHogState, team: int) -> Iterator[Group]:
    return store.groups.of_team(team)


def newest_before(store: PostHogState, team: int, gti: int,
                  position: tuple[int, str] | None) -> Iterator[Group]:
    """Groups of one type before ``(created_us, key)`` (all when ``None``), newest first."""
    table = store.groups.tables.get((team, gti))
    return table.newest_before(position) if table is not None else iter(())


def by_key(store: PostHogState, team: int, gti: int, after: str | None = None
           ) -> Iterator[Group]:
    """Groups of one type with a key after ``after``, ordered by key."""
    table = store.groups.tables.get((team, gti))
    return table.after(after) if table is not None else iter(())


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
