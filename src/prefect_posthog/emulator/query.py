"""The slice of the query API (`posthog/api/query.py`) a bulk verifier needs.

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

from prefect_posthog.emulator.common import Request, validation
from prefect_posthog.emulator.constants import QUERY_DEFAULT_ROWS, QUERY_MAX_ROWS
from prefect_posthog.emulator.group_models import by_key
from prefect_posthog.emulator.routing import api
from prefect_posthog.emulator.store import PostHogState

SUPPORTED = ("select key, properties from groups where index = {idx} [and key > {after}] "
             "[and key in {keys}] order by key limit N [offset M]")
_GROUPS_QUERY = re.compile(
    r"^\s*select\s+key\s*,\s*properties\s+from\s+groups\s+where\s+index\s*=\s*(?P<index>\S+)"
    r"(?:\s+and\s+key\s*>\s*(?P<after>\S+))?"
    r"(?:\s+and\s+key\s+in\s+(?P<keys>\S+))?"
    r"\s+order\s+by\s+key(?:\s+asc)?"
    r"(?:\s+limit\s+(?P<limit>\d+))?(?:\s+offset\s+(?P<offset>\d+))?\s*;?\s*$",
    re.IGNORECASE)


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


def query(store: PostHogState, req: Request) -> tuple[int, Any]:
    """``POST query/`` with a HogQLQuery reading group keys and properties."""
    spec = req.json_body().get("query")
    if not isinstance(spec, dict) or spec.get("kind") != "HogQLQuery":
        raise validation("query", "The emulator answers HogQLQuery only")
    match = _GROUPS_QUERY.match(str(spec.get("query", "")))
    if not match:
        raise validation("query", f"The emulator supports only: {SUPPORTED}")
    values = spec.get("values") if isinstance(spec.get("values"), dict) else {}
    index = _value(match.group("index"), values)
    after = _value(match.group("after"), values)
    keys = _value(match.group("keys"), values)
    # No LIMIT reads 100 rows; a LIMIT is capped at MAX_SELECT_RETURNED_ROWS.
    limit = min(int(match.group("limit") or QUERY_DEFAULT_ROWS), QUERY_MAX_ROWS)
    offset = int(match.group("offset") or 0)
    rows = by_key(store, req.team["id"], int(index))
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


# `create` is declared a read action: query:read is enough.
ROUTES = [api("POST", r"query", query, "query:read", throttle="hogql")]
