"""Group types (`ee/clickhouse/views/groups.py`, GroupsTypesViewSet): the list, display
metadata, detail dashboards, default columns and deletion. Types themselves are only ever
created by ingestion (and by groups written through the API)."""

from __future__ import annotations

from typing import Any

from prefect_posthog.emulator.common import Request, not_found, to_int, validation
from prefect_posthog.emulator.routing import api
from prefect_posthog.emulator.store import PostHogState

NO_META = {"name_singular": None, "name_plural": None, "detail_dashboard": None,
           "default_columns": None}


def _type_meta(store: PostHogState, team: int, index: str) -> dict:
    """The type's display metadata, created on its first write."""
    # It lives beside the plain index -> name mapping that ingestion, HogQL and the
    # project read use, so those stay simple.
    return store.data.setdefault("group_type_meta", {}).setdefault(str(team), {}).setdefault(
        index, dict(NO_META))


def _type_rows(store: PostHogState, team: int) -> list[dict]:
    types = store.data["group_types"].get(str(team), {})
    meta = store.data.get("group_type_meta", {}).get(str(team), {})
    return [{"group_type": name, "group_type_index": int(index),
             **meta.get(index, NO_META), "created_at": None}
            for index, name in sorted(types.items(), key=lambda x: int(x[0]))]


def _type_row(store: PostHogState, team: int, index: str) -> dict:
    return next(r for r in _type_rows(store, team) if str(r["group_type_index"]) == index)


def _existing_type(store: PostHogState, team: int, raw: Any) -> str:
    index = to_int(raw)
    if index is None or str(index) not in store.data["group_types"].get(str(team), {}):
        raise not_found("Group type not found")
    return str(index)


def list_group_types(store: PostHogState, req: Request) -> tuple[int, Any]:
    """A bare array ordered by index."""
    return 200, _type_rows(store, req.team["id"])


def update_group_types_metadata(store: PostHogState, req: Request) -> tuple[int, Any]:
    """PATCH an array of ``{group_type_index, name_singular?, name_plural?}``; answers
    with the whole list. ``group_type`` is read-only: a rename attempt is ignored."""
    team = req.team["id"]
    if not isinstance(req.body, list):
        raise validation("non_field_errors", "Expected a list of items.", "not_a_list")
    # Check every row first so a bad row leaves nothing half-applied.
    rows = []
    for row in req.body:
        if not isinstance(row, dict) or "group_type_index" not in row:
            raise validation("group_type_index", "This field is required.", "required")
        for name in ("name_singular", "name_plural"):
            if row.get(name) is not None and not isinstance(row[name], str):
                raise validation(name, "Not a valid string.")
        rows.append((_existing_type(store, team, row["group_type_index"]), row))
    for index, row in rows:
        meta = _type_meta(store, team, index)
        meta.update({name: row[name] for name in ("name_singular", "name_plural")
                     if name in row})
    return 200, _type_rows(store, team)


def create_group_type_detail_dashboard(store: PostHogState, req: Request) -> tuple[int, Any]:
    team = req.team["id"]
    index = _existing_type(store, team, req.json_body().get("group_type_index"))
    meta = _type_meta(store, team, index)
    if meta["detail_dashboard"]:
        return 400, {"detail": "Dashboard already exists for this group type."}
    dashboards = store.data["dashboards"].setdefault(str(team), {})
    dashboard_id = 1 + max((int(d) for d in dashboards), default=0)
    name = store.data["group_types"][str(team)][index]
    dashboards[str(dashboard_id)] = {"id": dashboard_id, "name": f"{name} detail",
                                     "share_token": None}
    meta["detail_dashboard"] = dashboard_id
    return 200, _type_row(store, team, index)


def set_group_type_default_columns(store: PostHogState, req: Request) -> tuple[int, Any]:
    team = req.team["id"]
    body = req.json_body()
    index = _existing_type(store, team, body.get("group_type_index"))
    columns = body.get("default_columns")
    if columns is not None and not (isinstance(columns, list) and all(
            isinstance(c, str) for c in columns)):
        raise validation("default_columns", "Expected a list of strings.")
    _type_meta(store, team, index)["default_columns"] = columns
    return 200, _type_row(store, team, index)


def delete_group_type(store: PostHogState, req: Request) -> tuple[int, Any]:
    """Removes the mapping only; PostHog keeps the groups' rows."""
    team = req.team["id"]
    index = _existing_type(store, team, req.params["group_type_index"])
    del store.data["group_types"][str(team)][index]
    store.data.get("group_type_meta", {}).get(str(team), {}).pop(index, None)
    return 204, None


ROUTES = [
    # sharing_enabled_actions = ["list"]: a shared page may read the types.
    api("GET", r"groups_types", list_group_types, "group:read", sharing=True),
    api("PATCH", r"groups_types/update_metadata", update_group_types_metadata, "group:write"),
    api("PUT", r"groups_types/create_detail_dashboard", create_group_type_detail_dashboard,
        "group:write"),
    api("PUT", r"groups_types/set_default_columns", set_group_type_default_columns,
        "group:write"),
    api("DELETE", r"groups_types/(?P<group_type_index>\d+)", delete_group_type, "group:write"),
]
