"""Reading groups back through HogQL within PostHog's query limits.

- At most 50,000 rows a query (`posthog/hogql/constants.py` MAX_SELECT_RETURNED_ROWS; a
  larger LIMIT is clamped silently) and no OFFSET with a personal API key
  (`posthog/hogql/user_query_validator.py`): pages are keyset pages, ``key > {after}
  order by key limit 50000``. With an explicit LIMIT `hasMore` is null, so a full page is
  the only sign of more — and a page ending at its range's last key needs no next call.
- At most 3 API queries of a project run at once (`posthog/clickhouse/client/limit.py`
  ``max_concurrency=3``; a fourth waits 30 s, then 429 ``throttled``): the key space of a
  type is split at known input keys into at most 3 ranges read in parallel, each range a
  whole number of 50,000-row pages, so splitting costs no extra call. A 429 is retried
  by the client's policy, with backoff.
- 120 HogQL queries an hour per key (`posthog/rate_limit.py` HogQLQueryThrottle): the
  job counts its queries, and a read that would go over the budget is not started.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prefect_posthog.client import HOGQL_RATE_LIMITS, QUERY_MAX_ROWS, PostHogClient
from prefect_posthog.flows.bulk_pool import stream_bounded
from prefect_posthog.flows.bulk_store import BulkStore

# `posthog/clickhouse/client/limit.py`: API queries a project may run at once.
QUERY_CONCURRENCY = 3
HOGQL_BUDGET = HOGQL_RATE_LIMITS[0].limit


@dataclass(frozen=True)
class KeyRange:
    """Groups of one type with a key from `start` (included; None: the first) or after
    `after`, up to `end` (included)."""

    gti: int
    after: str | None
    start: str | None
    end: str
    groups: int  # stored groups it holds: the fewest pages it can take
    page_rows: int = QUERY_MAX_ROWS  # rows a query asks for (PostHog's cap by default)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.groups / self.page_rows))


@dataclass
class Page:
    """One query's rows and the key interval they cover: (after, upto]."""

    gti: int
    after: str | None
    upto: str
    rows: list[tuple[str, dict[str, Any]]]


class QueryBudget:
    """The run's share of the key's HogQL budget: queries made, per read and in all.

    A plain class (not a dataclass), so Prefect hands the task the object itself rather
    than a copy.
    """

    def __init__(self, limit: int = HOGQL_BUDGET) -> None:
        self.limit, self.used = limit, 0
        self.queries: list[int] = []  # per read: queries made

    def allows(self, queries: int) -> bool:
        return self.used + queries <= self.limit


def key_ranges(store: BulkStore, *, pending: bool = False,
               page_rows: int = QUERY_MAX_ROWS) -> list[KeyRange]:
    """The ranges to read: per group type, at most 3, each a whole number of pages of
    `page_rows` (pending) groups, bounded by input keys so nothing beyond them is read."""
    ranges: list[KeyRange] = []
    for gti in store.types(pending=pending):
        first = store.first_key(gti, pending=pending)
        if first is None:
            continue
        count = store.count_of(gti, pending=pending)
        pages = math.ceil(count / page_rows)
        per = math.ceil(pages / min(QUERY_CONCURRENCY, pages)) * page_rows
        bounds = store.split_keys(gti, per, pending=pending)
        after = None
        for index, end in enumerate(bounds):
            held = min(per, count - index * per)
            ranges.append(KeyRange(gti, after, first if after is None else None, end, held,
                                   page_rows))
            after = end
    return ranges


def _pages(posthog: PostHogClient, part: KeyRange, calls: list[int]) -> Iterator[Page]:
    after, start = part.after, part.start
    while True:
        rows = posthog.query_groups(part.gti, after=after, start=start, end=part.end,
                                    limit=part.page_rows)
        calls.append(1)
        last = rows[-1][0] if rows else part.end
        done = len(rows) < part.page_rows or last >= part.end
        yield Page(part.gti, after, part.end if done else last, rows)
        if done:
            return
        after, start = last, None


def read_pages(posthog: PostHogClient, ranges: list[KeyRange], budget: QueryBudget
               ) -> Iterator[Page]:
    """Every page of `ranges`, at most 3 queries in flight, as they arrive."""
    calls: list[int] = []

    def reader(part: KeyRange) -> Callable[[], Iterator[Page]]:
        return lambda: _pages(posthog, part, calls)

    try:
        # One page being joined while three are fetched: at most four pages in memory.
        yield from stream_bounded([reader(r) for r in ranges], QUERY_CONCURRENCY,
                                  buffer=QUERY_CONCURRENCY + 1)
    finally:
        budget.used += len(calls)
        budget.queries.append(len(calls))
