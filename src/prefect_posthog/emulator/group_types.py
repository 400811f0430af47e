"""Group types (SPEC §6.5): the list, display metadata, detail dashboards, default
columns and deletion. Types themselves are only ever created by ingestion."""

from __future__ import annotations

from typing import Any

from prefect_posthog.emulator.common import Request, not_found, to_int, validation

NO_META = {"name_singular": None, "name_plural": None, "detail_dashboard": None,
           "default_columns": None}


class GroupTypesModel:
    """Endpoint behaviour mixed into `PostHogState`, whose data and ids it uses."""

    data: dict[str, Any]

    def _type_meta(self, team: int, index: str) -> dict:
        """The type's display metadata, created on its first write."""
        # It lives beside the plain index -> name mapping that ingestion, HogQL and the
        # project read use, so those stay simple.
        return self.data.setdefault("group_type_meta", {}).setdefault(str(team), {}).setdefault(
            index, dict(NO_META))

    def _type_rows(self, team: int) -> list[dict]:
        types = self.data["group_types"].get(str(team), {})
        meta = self.data.get("group_type_meta", {}).get(str(team), {})
        return [{"group_type": name, "group_type_index": int(index),
                 **meta.get(index, NO_META), "created_at": None}
                for index, name in sorted(types.items(), key=lambda x: int(x[0]))]

    def _existing_type(self, team: int, raw: Any) -> str:
        index = to_int(raw)
        if index is None or str(index) not in self.data["group_types"].get(str(team), {}):
            raise not_found("Group type not found")
        return str(index)

    def list_group_types(self, req: Request) -> tuple[int, Any]:
        """A bare array ordered by index."""
        return 200, self._type_rows(req.team["id"])

    def update_group_types_metadata(self, req: Request) -> tuple[int, Any]:
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
            rows.append((self._existing_type(team, row["group_type_index"]), row))
        for index, row in rows:
            meta = self._type_meta(team, index)
            meta.update({name: row[name] for name in ("name_singular", "name_plural")
                         if name in row})
        return 200, self._type_rows(team)

    def create_group_type_detail_dashboard(self, req: Request) -> tuple[int, Any]:
        team = req.team["id"]
        body = req.body if isinstance(req.body, dict) else {}
        index = self._existing_type(team, body.get("group_type_index"))
        meta = self._type_meta(team, index)
        if meta["detail_dashboard"]:
            return 400, {"detail": "Dashboard already exists for this group type."}
        dashboard_id = 1 + max((int(d) for d in self.data["dashboards"].get(str(team), {})),
                               default=0)
        name = self.data["group_types"][str(team)][index]
        self.data["dashboards"].setdefault(str(team), {})[str(dashboard_id)] = {
            "id": dashboard_id, "name": f"{name} detail", "share_token": None}
        meta["detail_dashboard"] = dashboard_id
        return 200, next(r for r in self._type_rows(team) if str(r["group_type_index"]) == index)

    def set_group_type_default_columns(self, req: Request) -> tuple[int, Any]:
        team = req.team["id"]
        body = req.body if isinstance(req.body, dict) else {}
        index = self._existing_type(team, body.get("group_type_index"))
        columns = body.get("default_columns")
        if columns is not None and not (isinstance(columns, list) and all(
                isinstance(c, str) for c in columns)):
            raise validation("default_columns", "Expected a list of strings.")
        self._type_meta(team, index)["default_columns"] = columns
        return 200, next(r for r in self._type_rows(team) if str(r["group_type_index"]) == index)

    def delete_group_type(self, req: Request) -> tuple[int, Any]:
        """Removes the mapping only; PostHog keeps the groups' rows."""
        team = req.team["id"]
        index = self._existing_type(team, req.params["group_type_index"])
        del self.data["group_types"][str(team)][index]
        self.data.get("group_type_meta", {}).get(str(team), {}).pop(index, None)
        return 204, None
