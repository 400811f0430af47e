"""Groups (SPEC §1): list with the keyset cursor, create, find, property updates and
deletes, activity, related actors, property definitions and values. Group types live in
`group_types`."""

from __future__ import annotations

import base64
import bisect
import json
from typing import Any
from urllib.parse import urlencode

from prefect_posthog.emulator.common import (
    Request,
    group_id,
    iso,
    not_found,
    to_int,
    validation,
)

GROUP_KEY_MAX = 400


def _encode_cursor(created_us: int, key: str) -> str:
    raw = json.dumps({"c": created_us, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str | None) -> dict | None:
    """SPEC §1.1: an invalid cursor, or an old one keyed on ``i`` instead of ``k``, silently
    means the first page; a millisecond ``c`` from older links is read as microseconds."""
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


def _person_actor(person: dict) -> dict:
    return {"type": "person", "id": person["uuid"], "uuid": person["uuid"],
            "created_at": iso(person["created_at"]), "last_seen_at": None,
            "distinct_ids": list(person["distinct_ids"]), "is_identified": False,
            "name": str(person["properties"].get("email") or person["distinct_ids"][0]),
            "properties": dict(person["properties"]), "matched_recordings": [],
            "value_at_data_point": None}


class GroupsModel:
    """Endpoint behaviour mixed into `PostHogState`, whose data, clock and ids it uses."""

    data: dict[str, Any]

    def _group_out(self, group: dict) -> dict:
        return {"group_type_index": group["group_type_index"], "group_key": group["group_key"],
                "group_properties": dict(group["group_properties"]),
                "created_at": iso(group["created_at"])}

    def _ordered(self, team: int, gti: int) -> list[dict]:
        """Groups of one type in ascending (created_at, key) order, cached until a create."""
        index = self._index.get((team, gti))
        if index is None:
            index = sorted(self._team_groups(team, gti),
                           key=lambda g: (g["created_at_us"], g["group_key"]))
            self._index[(team, gti)] = index
        return index

    def _team_groups(self, team: int, gti: int) -> list[dict]:
        return [g for g in self.data["groups"].values()
                if g["team"] == team and g["group_type_index"] == gti]

    @staticmethod
    def _required_query_int(req: Request, name: str) -> int:
        raw = req.query.get(name)
        if raw is None or raw == "":
            # The view raises a plain ValidationError: code invalid_input (SPEC §1).
            raise validation(name, "This query parameter is required.")
        value = to_int(raw)
        if value is None:
            raise validation(name, "A valid integer is required.")
        return value

    def _lookup_group(self, req: Request) -> dict:
        gti = self._required_query_int(req, "group_type_index")
        key = req.query.get("group_key")
        if not key:
            raise validation("group_key", "This query parameter is required.")
        group = self.data["groups"].get(group_id(req.team["id"], gti, key))
        if group is None:
            raise not_found()
        return group

    def list_groups(self, req: Request) -> tuple[int, Any]:
        raw = req.query.get("group_type_index")
        if raw is None or raw == "":
            raise validation("group_type_index",
                             "You must pass ?group_type_index= in this URL. To get a list of "
                             "valid group types, call /api/:project_id/groups_types/")
        gti = to_int(raw)
        if gti is None:
            raise validation("group_type_index", "A valid integer is required.")
        rows = self._ordered(req.team["id"], gti)  # ascending (created_at, key)
        if key_filter := req.query.get("group_key"):
            rows = [g for g in rows if key_filter.lower() in g["group_key"].lower()]
        if search := req.query.get("search"):
            needle = search.lower()
            rows = [g for g in rows if needle in json.dumps(g["group_properties"]).lower()
                    or needle == g["group_key"].lower()]
        end = len(rows)
        if cursor := _decode_cursor(req.query.get("cursor")):
            end = bisect.bisect_left(rows, (cursor["c"], cursor["k"]),
                                     key=lambda g: (g["created_at_us"], g["group_key"]))
        # Newest first: the page is the 100 rows just before the cursor position.
        page, more = rows[max(0, end - 100):end][::-1], end > 100
        next_url = None
        if more:
            last = page[-1]
            params = {"group_type_index": gti,
                      "cursor": _encode_cursor(last["created_at_us"], last["group_key"])}
            for name in ("search", "group_key"):
                if req.query.get(name):
                    params[name] = req.query[name]
            next_url = f"{req.base_url}{req.path}?{urlencode(params)}"
        return 200, {"next": next_url, "previous": None,
                     "results": [self._group_out(g) for g in page]}

    def create_group(self, req: Request) -> tuple[int, Any]:
        body = req.body if isinstance(req.body, dict) else {}
        if "group_type_index" not in body:
            raise validation("group_type_index", "This field is required.", "required")
        if body["group_type_index"] is None:
            raise validation("group_type_index", "This field may not be null.", "null")
        gti = to_int(body["group_type_index"])
        if gti is None:
            raise validation("group_type_index", "A valid integer is required.")
        if not 0 <= gti <= 4:
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
            raise validation("group_key", "Ensure this field has no more than 400 characters.",
                             "max_length")
        props = body.get("group_properties") or {}
        if not isinstance(props, dict):
            raise validation("group_properties", "Value must be valid JSON.")
        team = req.team["id"]
        gid = group_id(team, gti, key)
        if gid in self.data["groups"]:
            raise validation("detail", "A group with this key already exists")
        group = self._new_group(team, gti, key, props, req.now)
        for name in props:
            self.log_activity(team, "Group", str(group["pk"]), "create_group", req.user,
                              {"name": name, "changes": [{"type": "Group", "action": "created",
                                                          "field": name, "before": None,
                                                          "after": props[name]}]})
        return 201, self._group_out(group)

    def _new_group(self, team: int, gti: int, key: str, props: dict, now: float) -> dict:
        self.data["group_types"].setdefault(str(team), {}).setdefault(str(gti), f"type_{gti}")
        group = {"team": team, "group_type_index": gti, "group_key": key,
                 "group_properties": dict(props), "created_at": now,
                 "created_at_us": int(now * 1_000_000), "pk": self.next_id("group")}
        self.data["groups"][group_id(team, gti, key)] = group
        self._index.pop((team, gti), None)
        return group

    def find_group(self, req: Request) -> tuple[int, Any]:
        group = self._lookup_group(req)
        return 200, {**self._group_out(group), "notebook": None}

    def _require_type_mapping(self, team: int, gti: int) -> None:
        if str(gti) not in self.data["group_types"].get(str(team), {}):
            raise not_found()

    def update_group_property(self, req: Request) -> tuple[int, Any]:
        group = self._lookup_group(req)
        body = req.body if isinstance(req.body, dict) else {}
        key = body.get("key")
        if not isinstance(key, str) or not key:
            raise validation("key", "This field is required.")
        if "value" not in body or body["value"] is None:
            raise validation("value", "This field is required.")
        self._require_type_mapping(group["team"], group["group_type_index"])
        existed = key in group["group_properties"]
        before = group["group_properties"].get(key)
        group["group_properties"][key] = body["value"]
        self.log_activity(group["team"], "Group", str(group["pk"]),
                          "update_property" if existed else "create_property", req.user,
                          {"name": key, "changes": [{"type": "Group", "action":
                                                     "changed" if existed else "created",
                                                     "field": key, "before": before,
                                                     "after": body["value"]}]})
        return 200, self._group_out(group)

    def delete_group_property(self, req: Request) -> tuple[int, Any]:
        group = self._lookup_group(req)
        body = req.body if isinstance(req.body, dict) else {}
        name = body.get("$unset")
        if not isinstance(name, str):
            raise validation("$unset", "This field is required and must be a string (the "
                             "property name to delete).")
        self._require_type_mapping(group["team"], group["group_type_index"])
        if name not in group["group_properties"]:
            raise validation("$unset", f"Property '{name}' does not exist on this group.")
        before = group["group_properties"].pop(name)
        self.log_activity(group["team"], "Group", str(group["pk"]), "update_property", req.user,
                          {"name": name, "changes": [{"type": "Group", "action": "deleted",
                                                      "field": name, "before": before,
                                                      "after": None}]})
        return 200, self._group_out(group)

    def get_group_activity(self, req: Request) -> tuple[int, Any]:
        group = self._lookup_group(req)
        limit = to_int(req.query.get("limit", "10"))
        page = to_int(req.query.get("page", "1"))
        if limit is None or limit < 1:
            raise validation("limit", "A valid integer is required.")
        if page is None or page < 1:
            raise validation("page", "A valid integer is required.")
        entries = self.data["activity"].get(f"{group['team']}:Group:{group['pk']}", [])
        ordered = sorted(entries, key=lambda e: e["_seq"], reverse=True)
        chunk = ordered[(page - 1) * limit: page * limit]

        def link(p: int) -> str:
            params = {"group_type_index": group["group_type_index"],
                      "group_key": group["group_key"], "page": p, "limit": limit}
            return f"{req.base_url}{req.path}?{urlencode(params)}"

        return 200, {
            "results": [{k: v for k, v in e.items() if k != "_seq"} for e in chunk],
            "next": link(page + 1) if page * limit < len(ordered) else None,
            "previous": link(page - 1) if page > 1 else None,
            "total_count": len(ordered),
        }

    def list_related_groups(self, req: Request) -> tuple[int, Any]:
        actor = req.query.get("id")
        if not actor:
            raise validation("id", "This field is required.", "required")
        raw = req.query.get("group_type_index")
        if raw not in (None, ""):
            gti = to_int(raw)
            if gti is None or not 0 <= gti < 5:
                raise validation("group_type_index",
                                 "group_type_index is required to be at least 0 and less than 5")
            source = f"{req.team['id']}:{gti}:{actor}"
        else:
            source = f"{req.team['id']}:person:{actor}"
        persons, groups = [], []
        for ref in self.data["related"].get(source, []):
            if "person" in ref:
                person = self.data.get("persons", {}).get(f"{req.team['id']}:{ref['person']}")
                if person is not None:
                    persons.append(_person_actor(person))
                continue
            group = self.data["groups"].get(group_id(req.team["id"], ref["group_type_index"],
                                                      ref["group_key"]))
            if group is not None:  # events may name groups that were never created
                groups.append({"type": "group", "id": group["group_key"],
                               "group_key": group["group_key"],
                               "group_type_index": group["group_type_index"],
                               "created_at": iso(group["created_at"]),
                               "properties": dict(group["group_properties"]),
                               "matched_recordings": [], "value_at_data_point": None})
        groups.sort(key=lambda g: (g["group_type_index"], g["group_key"]))
        out = persons + groups
        return 200, out

    def list_group_property_definitions(self, req: Request) -> tuple[int, Any]:
        if not self.config.property_definitions_route:
            raise not_found()
        counts: dict[int, dict[str, int]] = {}
        for group in self.data["groups"].values():
            if group["team"] != req.team["id"]:
                continue
            bucket = counts.setdefault(group["group_type_index"], {})
            for name in group["group_properties"]:
                bucket[name] = bucket.get(name, 0) + 1
        return 200, {str(gti): [{"name": n, "count": c} for n, c in
                                sorted(b.items(), key=lambda x: (-x[1], x[0]))]
                     for gti, b in sorted(counts.items())}

    def list_group_property_values(self, req: Request) -> tuple[int, Any]:
        gti = self._required_query_int(req, "group_type_index")
        key = req.query.get("key")
        if not key:
            raise validation("key", "This query parameter is required.")
        needle = (req.query.get("value") or "").lower()
        counts: dict[str, int] = {}
        for group in self._team_groups(req.team["id"], gti):
            if key not in group["group_properties"]:
                continue
            value = group["group_properties"][key]
            text = value if isinstance(value, str) else json.dumps(value)
            if needle and needle not in text.lower():
                continue
            counts[text] = counts.get(text, 0) + 1
        rows = sorted(counts.items(), key=lambda x: (-x[1], x[0]))[:20]
        return 200, {"results": [{"name": n, "count": c} for n, c in rows], "refreshing": False}
