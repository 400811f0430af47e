"""The bulk job's management API path: batch by batch (one Prefect task each), read the
current state with the fewest calls, compare, and write only changed properties, one call
each (`ee/clickhouse/views/groups.py`: `update_property`, `delete_property`, `create`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote
from pydantic import BaseModel, Field

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import (
    Group,
    NotFoundError,
    OutcomeUnknownError,
    PostHogClient,
    PostHogError,
    ProjectNotFoundError,
    query_value,
)
from prefect_posthog.flows.bulk_diff import (
    NEW_GROUP,
    describe_set,
    describe_unset,
    same_value,
)
from prefect_posthog.flows.bulk_models import ItemOutcome, ItemPath, ItemStatus, Row
from prefect_posthog.flows.bulk_pool import run_bounded
from prefect_posthog.flows.bulk_report import Collector

# `ee/clickhouse/views/groups.py`: update_property answers 400 for a null value.
NO_NULL = ("PostHog's management API cannot store a null (update_property refuses null "
           "values); use write_path='capture' or 'auto' to set it through ingestion")


class PageKnowledge(BaseModel):
    """What the plan learnt about the size of each group type (pages of 100)."""

    exact: dict[int, int] = Field(default_factory=dict)
    at_least: dict[int, int] = Field(default_factory=dict)


class BatchResult(BaseModel):
    """Outcomes of one batch plus the calls it cost."""

    outcomes: list[ItemOutcome]
    reads: int
    writes: int
    pages: PageKnowledge


class _Planner:
    """Reads the current state of a batch's groups with the fewest calls."""

    def __init__(self, posthog: PostHogClient, pages: PageKnowledge) -> None:
        self.posthog = posthog
        self.pages = pages
        self.reads = 0

    def current(self, gti: int, keys: set[str]) -> dict[str, dict[str, Any]]:
        """Current properties of the wanted groups of one type (absent ones missing).

        Listing costs one call per 100 groups of the type; find costs one per group. The
        type's size is unknown until listed once, so listing is tried with a budget of half
        the wanted groups, then find covers what listing did not reach (at most 1.5x the
        cheaper strategy, and exact once the size is known).
        """
        found: dict[str, dict[str, Any]] = {}
        exact = self.pages.exact.get(gti)
        budget = len(keys) // 2
        if exact is not None:
            budget = exact if exact <= len(keys) else 0
        elif budget <= self.pages.at_least.get(gti, 0):
            budget = 0
        if budget > 0:
            cursor, pages = None, 0
            while pages < budget:
                page = self.posthog.list_groups(gti, cursor=cursor)
                self.reads += 1
                pages += 1
                for group in page.results:
                    if group.group_key in keys:
                        found[group.group_key] = group.group_properties
                cursor = query_value(page.next, "cursor")
                if not cursor:
                    self.pages.exact[gti] = pages
                    return found
            self.pages.at_least[gti] = max(pages, self.pages.at_least.get(gti, 0))
        for key in keys - found.keys():
            self.reads += 1
            try:
                found[key] = self.posthog.find_group(gti, key).group_properties
            except ProjectNotFoundError:
                raise
            except NotFoundError:  # absent groups stay missing
                pass
        return found


def _outcome(row: Row, status: ItemStatus, **fields: Any) -> ItemOutcome:
    u = row.update
    return ItemOutcome(row=row.row, group_type_index=u.group_type_index,
                       group_key=u.group_key, status=status, **fields)


def _write(posthog: PostHogClient, row: Row, current: dict[str, Any] | None,
           to_set: dict[str, Any], to_unset: list[str]) -> tuple[list[str], dict[str, Any],
                                                                  int]:
    """Make the writes; return the changes made, the new state and the calls.

    A failure is raised as `_Partial` carrying what was already applied.
    """
    u = row.update
    done: list[str] = []
    writes, state = 0, dict(current or {})
    try:
        if current is None:
            writes += 1
            try:
                group: Group = posthog.create_group(u.group_type_index, u.group_key, to_set)
                to_set = {}  # created with its properties
            except OutcomeUnknownError:
                # The create may have happened: read it back and write only what differs.
                group = posthog.find_group(u.group_type_index, u.group_key)
                to_set = {k: v for k, v in to_set.items()
                          if not same_value(group.group_properties, k, v)}
            state = dict(group.group_properties)
            done += [NEW_GROUP] + [describe_set(None, k, v) for k, v in u.set.items()
                                   if k not in to_set]
        for key, value in to_set.items():
            writes += 1
            old = state
            state = posthog.update_group_property(u.group_type_index, u.group_key, key,
                                                  value).group_properties
            done.append(describe_set(old, key, value))
        for key in to_unset:
            writes += 1
            old = state
            state = posthog.delete_group_property(u.group_type_index, u.group_key,
                                                  key).group_properties
            done.append(describe_unset(old, key))
    except Exception as exc:  # one item's failure never stops the others
        raise _Partial(done, writes, exc) from None
    return done, state, writes


class _Partial(Exception):
    def __init__(self, done: list[str], writes: int, error: Exception) -> None:
        super().__init__(str(error))
        self.done, self.writes, self.error = done, writes, error


def _apply_one(posthog: PostHogClient, row: Row, current: dict[str, Any] | None,
               dry_run: bool, create_missing: bool) -> tuple[ItemOutcome, dict[str, Any] | None,
                                                          int]:
    """Write one row's differences; return the outcome, the new state and the writes made."""
    u = row.update
    if current is None and not create_missing:
        return _outcome(row, ItemStatus.SKIPPED,
                        reason="group does not exist (create_missing is off)"), None, 0
    state = dict(current or {})
    if any(not same_value(state, k, None) for k in u.set_null):
        return _outcome(row, ItemStatus.FAILED, reason=NO_NULL), current, 0
    to_set = {k: v for k, v in u.set.items() if not same_value(state, k, v)}
    to_unset = [k for k in u.unset if k in state]
    changes = ([NEW_GROUP] if current is None else []) + [
        describe_set(current, k, v) for k, v in to_set.items()] + [
        describe_unset(state, k) for k in to_unset]
    if not changes:
        return _outcome(row, ItemStatus.UNCHANGED), state, 0
    if dry_run:
        return _outcome(row, ItemStatus.PLANNED, changes=changes), state, 0
    try:
        done, state, writes = _write(posthog, row, current, to_set, to_unset)
    except _Partial as partial:
        applied = f"applied {'; '.join(partial.done)}; " if partial.done else ""
        exc = partial.error
        text = str(exc) if isinstance(exc, PostHogError) else f"{type(exc).__name__}: {exc}"
        return _outcome(row, ItemStatus.FAILED, changes=partial.done,
                        reason=f"{applied}{text}"), None, partial.writes
    return _outcome(row, ItemStatus.APPLIED, changes=done), state, writes


def failed_outcomes(rows: list[Row], reason: str) -> list[ItemOutcome]:
    """A `failed` outcome for each row, with nothing applied."""
    return [_outcome(r, ItemStatus.FAILED, reason=reason[:500]) for r in rows]


def _read_state(planner: _Planner, by_group: dict[tuple[int, str], list[Row]]
                ) -> tuple[dict[tuple[int, str], dict[str, Any] | None], list[ItemOutcome]]:
    state: dict[tuple[int, str], dict[str, Any] | None] = {}
    unread: list[ItemOutcome] = []
    for gti in sorted({g for g, _ in by_group}):
        keys = {k for g, k in by_group if g == gti}
        try:
            found = planner.current(gti, keys)
        except PostHogError as exc:
            # Planning gave up (after its retries): these rows get an outcome, the rest
            # of the batch goes on.
            for key in sorted(keys):
                unread += failed_outcomes(by_group.pop((gti, key)),
                                          f"could not read the current state: {exc}")
            continue
        for key in keys:
            state[(gti, key)] = found.get(key)
    return state, unread


@task(name="Plan and apply group property batch", cache_policy=NO_CACHE, retries=0,
      task_run_name="apply-batch-from-row-{first_row}")
def apply_group_property_batch(
    credentials: PostHogCredentials,
    rows: list[Row],
    first_row: int,
    pages: PageKnowledge,
    dry_run: bool = False,
    create_missing: bool = False,
    max_concurrency: int = 4,
    concurrency_limit_name: str | None = None,
    project_id: int | str | None = None,
) -> BatchResult:
    """Plan and apply one batch: read current state, diff, write only changed properties.

    Groups are written in parallel (`max_concurrency` threads) and each group's rows in
    input order; the client's rate limiter keeps the key under its budget. A failure of one
    item never stops the others. Not retried as a task: every item reports its own outcome,
    and a re-run skips what was already applied.
    """
    before = None
    if concurrency_limit_name:
        from prefect.concurrency.sync import rate_limit

        def before() -> None:
            rate_limit(concurrency_limit_name, occupy=1, strict=True)

    with credentials.get_client(project_id, before_request=before) as posthog:
        planner = _Planner(posthog, pages.model_copy(deep=True))
        by_group: dict[tuple[int, str], list[Row]] = {}
        for row in rows:
            by_group.setdefault((row.update.group_type_index, row.update.group_key), []).append(row)
        state, unread = _read_state(planner, by_group)

        def run_group(group: tuple[int, str]) -> tuple[list[ItemOutcome], int]:
            outcomes, writes, current = [], 0, state[group]
            for row in by_group[group]:
                outcome, current, n = _apply_one(posthog, row, current, dry_run, create_missing)
                outcomes.append(outcome)
                writes += n
                if outcome.status == ItemStatus.FAILED and n:
                    # Unknown state after a failure: re-read before the next row of this group.
                    try:
                        current = posthog.find_group(*group).group_properties
                    except PostHogError:
                        current = None
            return outcomes, writes

        results = run_bounded(run_group, list(by_group), max_concurrency)
    outcomes = sorted([*unread, *(o for res, _ in results for o in res)], key=lambda o: o.row)
    return BatchResult(outcomes=outcomes, reads=planner.reads,
                       writes=sum(w for _, w in results), pages=planner.pages)


@dataclass
class ApiPath:
    """Runs rows through `apply_group_property_batch`, batch by batch, into the report."""

    credentials: PostHogCredentials
    collector: Collector
    dry_run: bool
    create_missing: bool
    batch_size: int
    max_concurrency: int
    concurrency_limit_name: str | None
    project_id: int | None
    pages: PageKnowledge = field(default_factory=PageKnowledge)

    def run(self, rows: Iterable[Row], path: ItemPath, note: str | None = None) -> None:
        """Write `rows` (in input order); each outcome says `path`, and — when applied or
        unchanged — why it came this way (the row's own note, else `note`)."""
        batch: list[Row] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= self.batch_size:
                self._batch(batch, path, note)
                batch = []
        if batch:
            self._batch(batch, path, note)

    def _batch(self, batch: list[Row], path: ItemPath, note: str | None) -> None:
        report = self.collector.report
        # quote: Prefect would otherwise walk and rebuild every row of the batch.
        try:
            result = apply_group_property_batch(
                self.credentials, quote(batch), batch[0].row, self.pages,
                dry_run=self.dry_run, create_missing=self.create_missing,
                max_concurrency=self.max_concurrency,
                concurrency_limit_name=self.concurrency_limit_name, project_id=self.project_id)
        except Exception as exc:  # the batch task crashed: its rows get outcomes
            text = str(exc) if isinstance(exc, PostHogError) else type(exc).__name__
            result = BatchResult(outcomes=failed_outcomes(batch, f"batch failed: {text}"),
                                 reads=0, writes=0, pages=self.pages)
        self.pages = result.pages
        report.reads += result.reads
        report.writes += result.writes
        notes = {r.row: r.note for r in batch if r.note}
        for outcome in result.outcomes:
            outcome.write_path = path
            reason = notes.get(outcome.row, note)
            if reason and outcome.status in (ItemStatus.APPLIED, ItemStatus.UNCHANGED):
                outcome.reason = reason
            self.collector.add(outcome)
        self.collector.progress()
