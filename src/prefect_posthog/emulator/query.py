"""The slice of the query API (`posthog/api/query.py`) a bulk verifier needs.

``POST query/`` understands one HogQL shape, the one PostHog's own tests use to read groups:

    select key, properties from groups where index = {idx}
        [and key > {after}] [and key >= {start}] [and key <= {end}] [and key < {before}]
        [and key in {keys}] order by key [limit N]

Placeholders come from ``values``. ``properties`` is returned as a JSON string, as PostHog
returns it. Anything else answers 400, saying what the emulator supports. A page costs what
it holds: groups are indexed by key (`group_index`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from prefect_posthog.emulator.common import ApiError, Request, std_error, validation
from prefect_posthog.emulator.constants import (
    QUERY_DEFAULT_ROWS,
    QUERY_MAX_BYTES,
    QUERY_MAX_ROWS,
    QUERY_RETRY_SECONDS,
)
from prefect_posthog.emulator.group_index import Group
from prefect_posthog.emulator.group_models import by_key, get_group
from prefect_posthog.emulator.routing import api
from prefect_posthog.emulator.store import Config, PostHogState

SUPPORTED = ("select key, properties from groups where index = {idx} [and key > {after}] "
             "[and key >= {start}] [and key <= {end}] [and key < {before}] [and key in "
             "{keys}] order by key [limit N]")
_GROUPS_QUERY = re.compile(
    r"^\s*select\s+key\s*,\s*properties\s+from\s+groups\s+where\s+index\s*=\s*(?P<index>\S+)"
    r"(?P<conditions>(?:\s+and\s+key\s*(?:>=|<=|>|<|\s+in\s+)\s*\S+)*)"
    r"\s+order\s+by\s+key(?:\s+asc)?"
    r"(?:\s+limit\s+(?P<limit>\d+))?(?:\s+offset\s+(?P<offset>\d+))?\s*;?\s*$",
    re.IGNORECASE)
_CONDITION = re.compile(r"\s+and\s+key\s*(>=|<=|>|<|\s+in\s+)\s*(\S+)", re.IGNORECASE)
# `posthog/hogql/user_query_validator.py`: personal-key queries page by keyset only.
OFFSET_NOT_ALLOWED = ("OFFSET is not supported on queries made with a personal API key. For "
                      "pagination, use keyset pagination on the `timestamp` column, or on "
                      "another column with a stable order.")
# `posthog/api/query.py` CONCURRENCY_LIMIT_USER_MESSAGE
TOO_MANY_QUERIES = "Too many queries are running right now — please try again in a moment."


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


def _check_size(text: str, values: dict[str, Any]) -> None:
    """Placeholders are substituted into the SQL text, whose size ClickHouse caps."""
    size = len(text.encode()) + sum(len(json.dumps(v).encode()) for v in values.values())
    if size > QUERY_MAX_BYTES:
        # How PostHog words ClickHouse's "Max query size exceeded" is not confirmed.
        raise validation("query", f"Max query size exceeded: {size} > {QUERY_MAX_BYTES} bytes")


def _bounds(conditions: str, values: dict[str, Any]) -> dict[str, Any]:
    """``and key <op> value`` conditions as {op: value}; ``in`` as a key list."""
    bounds: dict[str, Any] = {}
    for op, raw in _CONDITION.findall(conditions):
        value = _value(raw, values)
        bounds["in" if op.strip().lower() == "in" else op] = value
    return bounds


def _rows(store: PostHogState, team: int, index: int, bounds: dict[str, Any]
          ) -> Iterator[Group]:
    # ClickHouse compares String bytes; Python's code point order is the same for UTF-8.
    after, start = bounds.get(">"), bounds.get(">=")
    low = max((str(v) for v in (after, start) if v is not None), default=None)
    inclusive = start is not None and (after is None or str(start) > str(after))
    rows: Iterator[Group]
    if bounds.get("in") is not None:
        found = (get_group(store, team, index, str(k)) for k in sorted({str(k) for k in
                                                                        bounds["in"]}))
        rows = (g for g in found if g is not None)
    else:
        rows = by_key(store, team, index, None if low is None else low)
        if inclusive:
            first = get_group(store, team, index, low)
            rows = itertools.chain([first] if first is not None else [], rows)
    return _within(rows, low, inclusive, bounds)


def _within(rows: Iterator[Group], low: str | None, inclusive: bool,
            bounds: dict[str, Any]) -> Iterator[Group]:
    high = {op: str(bounds[op]) for op in ("<", "<=") if bounds.get(op) is not None}
    for group in rows:
        if low is not None and (group.key < low or (group.key == low and not inclusive)):
            continue
        if ("<" in high and group.key >= high["<"]) or ("<=" in high and
                                                         group.key > high["<="]):
            return
        yield group


def query(store: PostHogState, req: Request) -> tuple[int, Any]:
    """``POST query/`` with a HogQLQuery reading group keys and properties."""
    spec = req.json_body().get("query")
    if not isinstance(spec, dict) or spec.get("kind") != "HogQLQuery":
        raise validation("query", "The emulator answers HogQLQuery only")
    match = _GROUPS_QUERY.match(str(spec.get("query", "")))
    if not match:
        raise validation("query", f"The emulator supports only: {SUPPORTED}")
    if match.group("offset") is not None:
        raise validation(None, OFFSET_NOT_ALLOWED, "hogql_query_error")
    values = spec.get("values") if isinstance(spec.get("values"), dict) else {}
    _check_size(str(spec["query"]), values)
    rows = _rows(store, req.team["id"], int(_value(match.group("index"), values)),
                 _bounds(match.group("conditions") or "", values))
    explicit = match.group("limit") is not None
    # An explicit LIMIT is clamped to MAX_SELECT_RETURNED_ROWS and no paginator runs, so
    # hasMore stays null (`hogql_query_runner.py`); without one, 100 rows and hasMore.
    limit = min(int(match.group("limit")), QUERY_MAX_ROWS) if explicit else QUERY_DEFAULT_ROWS
    page = [[g.key, g.properties] for _, g in zip(range(limit + (not explicit)), rows,
                                                 strict=False)]
    more = None if explicit else len(page) > limit
    return 200, {
        "results": page[:limit], "columns": ["key", "properties"],
        "types": [["key", "String"], ["properties", "String"]], "hasMore": more,
        "limit": None if explicit else limit, "offset": None if explicit else 0,
        "query": spec.get("query"), "error": None,
    }


class QuerySlots:
    """At most ``query_concurrency`` API queries per team at a time; a query beyond them
    waits for a slot, retrying as PostHog's limiter does, and then gets a 429 without
    ``Retry-After`` (the limiter raises Throttled with no wait)."""

    def __init__(self) -> None:
        self.running: dict[int, int] = {}
        self.peak = 0  # the most queries of one team that ran at once
        self.throttled = 0  # queries answered 429 for want of a slot

    @asynccontextmanager
    async def slot(self, team: int, config: Config) -> AsyncIterator[None]:
        await self._acquire(team, config)
        try:
            yield
        finally:
            self.running[team] -= 1

    async def _acquire(self, team: int, config: Config) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.query_queue_seconds
        wait, factor, longest = QUERY_RETRY_SECONDS
        while self.running.get(team, 0) >= config.query_concurrency:
            if loop.time() >= deadline:
                self.throttled += 1
                raise _too_many()
            await asyncio.sleep(min(wait, max(0.0, deadline - loop.time())))
            wait = min(wait * factor, longest)
        self.running[team] = self.running.get(team, 0) + 1
        self.peak = max(self.peak, self.running[team])

    def stats(self) -> dict[str, Any]:
        return {"running": {str(t): n for t, n in self.running.items()}, "peak": self.peak,
                "throttled": self.throttled}


def _too_many() -> ApiError:
    return std_error(429, "throttled_error", "throttled", TOO_MANY_QUERIES)


# `create` is declared a read action: query:read is enough.
ROUTES = [api("POST", r"query", query, "query:read", throttle="hogql", concurrency=True)]
