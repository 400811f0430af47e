"""Groups (`ee/clickhouse/views/groups.py`, GroupsViewSet): list with the keyset cursor,
create, find, property updates and deletes, activity, related actors, property definitions
and values; the routes beside the handlers. How the store keeps groups is `group_index`,
the lookups every area uses `group_models`."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from prefect_posthog.emulator.common import Request, iso, not_found, to_int, validation
from prefect_posthog.emulator.constants import (
    GROUP_KEY_MAX,
    GROUPS_PAGE_SIZE,
    MAX_GROUP_TYPES,
    PROPERTY_VALUES_MAX,
)
from prefect_posthog.emulator.group_models import (
    Group,
    decode_cursor,
    encode_cursor,
    get_group,
    group_out,
    new_group,
    newest_before,
    team_groups,
    type_groups,
)
from prefect_posthog.emulator.routing import api
from prefect_posthog.emulator.store import PostHogState


def _required_query_int(req: Request, name: str) -> int:
    raw = req.query.get(name)
    if raw is None or raw == "":
        # The view raises a plain ValidationError: code invalid_input, not required.
        raise validation(name, "This query parameter is required.")
    value = to_int(raw)
    if value is None:
        raise validation(name, "A valid integer is required.")
    return value


def _lookup_group(store: PostHogState, req: Request) -> Group:
    gti = _required_query_int(req, "group_type_index")
    key = req.query.get("group_key")
    if not key:
        raise validation("group_key", "This query parameter is required.")
    group = get_group(store, req.team["id"], gti, key)
    if group is None:
        raise not_found()
    return group


def _require_type_mapping(store: PostHogState, team: int, gti: int) -> None:
    if str(gti) not in store.data["group_types"].get(str(team), {}):
        raise not_found()


def list_groups(store: PostHogState, req: Request) -> tuple[int, Any]:
    """Newest first (created_at, then key, descending), 100 a page, a keyset cursor."""
    raw = req.query.get("group_type_index")
    if raw is None or raw == "":
        raise validation("group_type_index",
                         "You must pass ?group_type_index= in this URL. To get a list of "
                         "valid group types, call /api/:project_id/groups_types/")
    gti = to_int(raw)
    if gti is None:
        raise validation("group_type_index", "A valid integer is required.")
    needle_key = (req.query.get("group_key") or "").lower()
    needle = (req.query.get("search") or "").lower()

    def wanted(group: Group) -> bool:
        if needle_key and needle_key not in group.key.lower():
            return False
        return not needle or needle in group.properties.lower() or needle == group.key.lower()

    cursor = decode_cursor(req.query.get("cursor"))
    rows: list[Group] = []
    # Newest first: the page is the rows just before the cursor position, and one more
    # row says whether there is a next page.
    for group in newest_before(store, req.team["id"], gti,
                               (cursor["c"], cursor["k"]) if cursor else None):
        if wanted(group):
            rows.append(group)
            if len(rows) > GROUPS_PAGE_SIZE:
                break
    page = rows[:GROUPS_PAGE_SIZE]
    next_url = None
    if len(rows) > GROUPS_PAGE_SIZE:
        last = page[-1]
        params = {"group_type_index": gti, "cursor": encode_cursor(last.created_us, last.key)}
        for name in ("search", "group_key"):
            if req.query.get(name):
                params[name] = req.query[name]
        next_url = f"{req.base_url}{req.path}?{urlencode(params)}"
    return 200, {"next": next_url, "previous": None, "results": [group_out(g) for g in page]}


def _create_body(req: Request) -> tuple[int, str, dict]:
    """The create serializer's checks, in its field order."""
    body = req.json_body()
    if "group_type_index" not in body:
        raise validation("group_type_index", "This field is required.", "required")
    if body["group_type_index"] is None:
        raise validation("group_type_index", "This field may not be null.", "null")
    gti = to_int(body["group_type_index"])
    if gti is None:
        raise validation("group_type_index", "A valid integer is required.")
    if not 0 <= gti < MAX_GROUP_TYPES:
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
        raise validation("group_key", f"Ensure this field has no more than {GROUP_KEY_MAX} "
                         "characters.", "max_length")
    props = body.get("group_properties") or {}
    if not isinstance(props, dict):
        raise validation("group_properties", "Value must be valid JSON.")
    return gti, key, props


def create_group(store: PostHogState, req: Request) -> tuple[int, Any]:
    gti, key, props = _create_body(req)
    team = req.team["id"]
    if get_group(store, team, gti, key) is not None:
        raise validation("detail", "A group with this key already exists")
    group = new_group(store, team, gti, key, props, req.now)
    for name in props:
        store.log_activity(team, "Group", str(group.pk), "create_group", req.user,
                           {"name": name, "changes": [{"type": "Group", "action": "created",
                                                       "field": name, "before": None,
                                                       "after": props[name]}]})
    return 201, group_out(group)


def find_group(store: PostHogState, req: Request) -> tuple[int, Any]:
    return 200, {**group_out(_lookup_group(store, req)), "notebook": None}


def _log_property_change(store: PostHogState, req: Request, group: Group, activity: str,
                         name: str, action: str, before: Any, after: Any) -> None:
    store.log_activity(group.team, "Group", str(group.pk), activity, req.user,
                       {"name": name, "changes": [{"type": "Group", "action": action,
                                                   "field": name, "before": before,
                                                   "after": after}]})


def update_group_property(store: PostHogState, req: Request) -> tuple[int, Any]:
    group = _lookup_group(store, req)
    body = req.json_body()
    key = body.get("key")
    if not isinstance(key, str) or not key:
        raise validation("key", "This field is required.")
    if "value" not in body or body["value"] is None:
        raise validation("value", "This field is required.")
    _require_type_mapping(store, group.team, group.type_index)
    props = group.props()
    existed = key in props
    before = props.get(key)
    props[key] = body["value"]
    group.set_props(props)
    _log_property_change(store, req, group, "update_property" if existed else "create_property",
                         key, "changed" if existed else "created", before, body["value"])
    return 200, group_out(group)


def delete_group_property(store: PostHogState, req: Request) -> tuple[int, Any]:
    group = _lookup_group(store, req)
    name = req.json_body().get("$unset")
    if not isinstance(name, str):
        raise validation("$unset", "This field is required and must be a string (the "
                         "property name to delete).")
    _require_type_mapping(store, group.team, group.type_index)
    props = group.props()
    if name not in props:
        raise validation("$unset", f"Property '{name}' does not exist on this group.")
    before = props.pop(name)
    group.set_props(props)
    _log_property_change(store, req, group, "update_property", name, "deleted", before, None)
    return 200, group_out(group)


def get_group_activity(store: PostHogState, req: Request) -> tuple[int, Any]:
    group = _lookup_group(store, req)
    limit = to_int(req.query.get("limit", "10"))
    page = to_int(req.query.get("page", "1"))
    if limit is None or limit < 1:
        raise validation("limit", "A valid integer is required.")
    if page is None or page < 1:
        raise validation("page", "A valid integer is required.")
    entries = store.data["activity"].get(f"{group.team}:Group:{group.pk}", [])
    ordered = sorted(entries, key=lambda e: e["_seq"], reverse=True)
    chunk = ordered[(page - 1) * limit: page * limit]

    def link(p: int) -> str:
        params = {"group_type_index": group.type_index, "group_key": group.key, "page": p,
                  "limit": limit}
        return f"{req.base_url}{req.path}?{urlencode(params)}"

    return 200, {
        "results": [{k: v for k, v in e.items() if k != "_seq"} for e in chunk],
        "next": link(page + 1) if page * limit < len(ordered) else None,
        "previous": link(page - 1) if page > 1 else None,
        "total_count": len(ordered),
    }


def _person_actor(person: dict) -> dict:
    return {"type": "person", "id": person["uuid"], "uuid": person["uuid"],
            "created_at": iso(person["created_at"]), "last_seen_at": None,
            "distinct_ids": list(person["distinct_ids"]), "is_identified": False,
            "name": str(person["properties"].get("email") or person["distinct_ids"][0]),
            "properties": dict(person["properties"]), "matched_recordings": [],
            "value_at_data_point": None}


def _group_actor(group: Group) -> dict:
    return {"type": "group", "id": group.key, "group_key": group.key,
            "group_type_index": group.type_index, "created_at": iso(group.created_at),
            "properties": group.props(), "matched_recordings": [], "value_at_data_point": None}


def list_related_groups(store: PostHogState, req: Request) -> tuple[int, Any]:
    """Persons first, then groups by (type, key); groups that do not exist are skipped."""
    actor = req.query.get("id")
    if not actor:
        raise validation("id", "This field is required.", "required")
    team = req.team["id"]
    raw = req.query.get("group_type_index")
    if raw not in (None, ""):
        gti = to_int(raw)
        if gti is None or not 0 <= gti < MAX_GROUP_TYPES:
            raise validation("group_type_index",
                             "group_type_index is required to be at least 0 and less than 5")
        source = f"{team}:{gti}:{actor}"
    else:
        source = f"{team}:person:{actor}"
    persons, groups = [], []
    for ref in store.data["related"].get(source, []):
        if "person" in ref:
            person = store.data.get("persons", {}).get(f"{team}:{ref['person']}")
            if person is not None:
                persons.append(_person_actor(person))
            continue
        group = get_group(store, team, ref["group_type_index"], ref["group_key"])
        if group is not None:  # events may name groups that were never created
            groups.append(_group_actor(group))
    groups.sort(key=lambda g: (g["group_type_index"], g["group_key"]))
    return 200, persons + groups


def list_group_property_definitions(store: PostHogState, req: Request) -> tuple[int, Any]:
    if not store.config.property_definitions_route:
        raise not_found()
    counts: dict[int, dict[str, int]] = {}
    for group in team_groups(store, req.team["id"]):
        bucket = counts.setdefault(group.type_index, {})
        for name in group.props():
            bucket[name] = bucket.get(name, 0) + 1
    return 200, {str(gti): [{"name": n, "count": c} for n, c in
                            sorted(b.items(), key=lambda x: (-x[1], x[0]))]
                 for gti, b in sorted(counts.items())}


def list_group_property_values(store: PostHogState, req: Request) -> tuple[int, Any]:
    gti = _required_query_int(req, "group_type_index")
    key = req.query.get("key")
    if not key:
        raise validation("key", "This query parameter is required.")
    needle = (req.query.get("value") or "").lower()
    counts: dict[str, int] = {}
    for group in type_groups(store, req.team["id"], gti):
        props = group.props()
        if key not in props:
            continue
        value = props[key]
        text = value if isinstance(value, str) else json.dumps(value)
        if needle and needle not in text.lower():
            continue
        counts[text] = counts.get(text, 0) + 1
    rows = sorted(counts.items(), key=lambda x: (-x[1], x[0]))[:PROPERTY_VALUES_MAX]
    return 200, {"results": [{"name": n, "count": c} for n, c in rows], "refreshing": False}


# The viewset's scope_object and each action's required_scopes.
ROUTES = [
    api("GET", r"groups", list_groups, "group:read"),
    api("POST", r"groups", create_group, "group:write"),
    api("GET", r"groups/find", find_group, "group:read"),
    api("POST", r"groups/update_property", update_group_property, "group:write"),
    api("POST", r"groups/delete_property", delete_group_property, "group:write"),
    # activity needs activity_log:read, not group:read
    api("GET", r"groups/activity", get_group_activity, "activity_log:read"),
    api("GET", r"groups/related", list_related_groups, "group:read"),
    api("GET", r"groups/property_definitions", list_group_property_definitions, "group:read"),
    api("GET", r"groups/property_values", list_group_property_values, "group:read"),
]
