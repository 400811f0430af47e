"""The project endpoint and the slice of the query API a bulk verifier needs (SPEC §6.5-6.6).

``POST query/`` understands one HogQL shape, the one PostHog's own tests use to read groups:

    select key, properties from groups where index = {idx}
        [and key > {after}] [and key in {keys}] order by key limit N [offset M]

Placeholders come from ``values``. ``properties`` is returned as a JSON string, as PostHog
returns it. Anything else answers 400, saying what the emulator supports.
"""

from __future__ import annotations

import json
import re
from typing import Any

from prefect_posthog.emulator.common import Request, iso, validation
from prefect_posthog.emulator.state import PostHogState

MAX_ROWS = 50_000
DEFAULT_ROWS = 100
_GROUPS_QUERY = re.compile(
    r"^\s*select\s+key\s*,\s*properties\s+from\s+groups\s+where\s+index\s*=\s*(?P<index>\S+)"
    r"(?:\s+and\s+key\s*>\s*(?P<after>\S+))?"
    r"(?:\s+and\s+key\s+in\s+(?P<keys>\S+))?"
    r"\s+order\s+by\s+key(?:\s+asc)?"
    r"(?:\s+limit\s+(?P<limit>\d+))?(?:\s+offset\s+(?P<offset>\d+))?\s*;?\s*$",
    re.IGNORECASE)


def get_project(state: PostHogState, req: Request) -> tuple[int, Any]:
    """``GET /api/projects/{id}/``: the project, with its capture token ``api_token``."""
    team = req.team
    types = state.data["group_types"].get(str(team["id"]), {})
    return 200, {
        "id": team["id"], "uuid": f"00000000-0000-0000-0000-{team['id']:012d}",
        "name": team["name"], "organization": team["organization"],
        "api_token": team["api_token"], "has_group_types": bool(types),
        "group_types": [{"group_type": name, "group_type_index": int(index)}
                        for index, name in sorted(types.items(), key=lambda x: int(x[0]))],
        "created_at": iso(0),
    }


def _value(raw: str | None, values: dict[str, Any]) -> Any:
    if raw is None:
        return None
    match = re.fullmatch(r"\{(\w+)\}", raw)
    if match:
        if match.group(1) not in values:
            raise validation("query", f"Placeholder {{{match.group(1)}}} is not defined")
        return values[match.group(1)]
    try:
        return json.loads(raw.replace("'", '"'))
    except ValueError:
        raise validation("query", f"Cannot read the value {raw}") from None


def query(state: PostHogState, req: Request) -> tuple[int, Any]:
    """``POST query/`` with a HogQLQuery reading group keys and properties."""
    body = req.body if isinstance(req.body, dict) else {}
    spec = body.get("query")
    if not isinstance(spec, dict) or spec.get("kind") != "HogQLQuery":
        raise validation("query", "The emulator answers HogQLQuery only")
    match = _GROUPS_QUERY.match(str(spec.get("query", "")))
    if not match:
        raise validation("query", "The emulator supports only: select key, properties from "
                         "groups where index = {idx} [and key > {after}] [and key in {keys}] "
                         "order by key limit N [offset M]")
    values = spec.get("values") if isinstance(spec.get("values"), dict) else {}
    index = _value(match.group("index"), values)
    after = _value(match.group("after"), values)
    keys = _value(match.group("keys"), values)
    limit = min(int(match.group("limit") or DEFAULT_ROWS), MAX_ROWS)
    offset = int(match.group("offset") or 0)
    rows = sorted((g for g in state._team_groups(req.team["id"], int(index))),
                  key=lambda g: g["group_key"])
    if after is not None:
        rows = [g for g in rows if g["group_key"] > str(after)]
    if keys is not None:
        wanted = {str(k) for k in keys}
        rows = [g for g in rows if g["group_key"] in wanted]
    page = rows[offset:offset + limit]
    return 200, {
        "results": [[g["group_key"], json.dumps(g["group_properties"])] for g in page],
        "columns": ["key", "properties"], "types": [["key", "String"],
                                                    ["properties", "String"]],
        "hasMore": offset + limit < len(rows), "limit": limit, "offset": offset,
        "query": spec.get("query"), "error": None,
    }


HANDLERS = {"get_project": get_project, "query": query}
