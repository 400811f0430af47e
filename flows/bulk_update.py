"""Bulk group property update: read the input, plan against PostHog, write only what differs."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterable
from contextvars import copy_context
from pathlib import Path
from typing import Annotated, Any, TypeVar

from prefect import Flow, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.settings import get_current_settings
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote
from pydantic import BaseModel, Field

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import (
    Group,
    InvalidInputError,
    NotFoundError,
    OutcomeUnknownError,
    PostHogClient,
    PostHogError,
    ProjectNotFoundError,
    query_value,
)
from prefect_posthog.flows.blocks import load_credentials
from prefect_posthog.flows.bulk_input import Row, chunks, read_rows, validate_input
from prefect_posthog.flows.capture_path import (
    AUTO_CAPTURE_MINUTES,
    NEW_GROUP,
    WritePath,
    api_minutes,
    describe_set,
    describe_unset,
    parse_windows,
    run_capture_path,
    same_value,
)
from prefect_posthog.flows.events import bulk_update_event, project_of
from prefect_posthog.flows.models import BulkUpdateReport, GroupPropertyUpdate, ItemOutcome
from prefect_posthog.flows.preflight import project_or_fail
from prefect_posthog.flows.report_rows import bulk_row
from prefect_posthog.flows.reporting import artifact_key, cell, finish
from prefect_posthog.tasks import get_project, list_group_types

T = TypeVar("T")
R = TypeVar("R")


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


# -- planning and applying one batch ------------------------------------------------------------

def _run_bounded(fn: Callable[[T], R], items: list[T], workers: int) -> list[R]:
    """`fn` over `items` on at most `workers` threads, results in input order.

    Workers pull from a shared index, so bookkeeping is O(1) per item (an executor would
    hold one Future, with its lock, per item of a 10,000-row batch).
    """
    results: list[R] = [None] * len(items)  # type: ignore[list-item]
    cursor = iter(range(len(items)))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work() -> None:
        while not errors:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            try:
                results[index] = fn(items[index])
            except BaseException as exc:  # surfaced below, after the other workers stop
                errors.append(exc)

    # copy_context keeps Prefect's run context (and its logger) in the worker threads.
    threads = [threading.Thread(target=copy_context().run, args=(work,), daemon=True)
               for _ in range(max(1, min(workers, len(items))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


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


def _apply_one(posthog: PostHogClient, row: Row, current: dict[str, Any] | None,
               dry_run: bool, create_missing: bool) -> tuple[ItemOutcome, dict[str, Any] | None,
                                                          int]:
    """Write one row's differences; return the outcome, the new state and the writes made."""
    u = row.update
    base = {"row": row.row, "group_type_index": u.group_type_index, "group_key": u.group_key}
    if current is None and not create_missing:
        return ItemOutcome(**base, status="skipped",
                           reason="group does not exist (create_missing is off)"), None, 0
    state = dict(current or {})
    to_set = {k: v for k, v in u.set.items() if not same_value(state, k, v)}
    to_unset = [k for k in u.unset if k in state]
    changes = ([NEW_GROUP] if current is None else []) + [
        describe_set(current, k, v) for k, v in to_set.items()] + [
        describe_unset(state, k) for k in to_unset]
    if not changes:
        return ItemOutcome(**base, status="unchanged"), state, 0
    if dry_run:
        return ItemOutcome(**base, status="planned", changes=changes), state, 0
    done: list[str] = []
    writes = 0
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
        applied = f"applied {'; '.join(done)}; " if done else ""
        text = str(exc) if isinstance(exc, PostHogError) else f"{type(exc).__name__}: {exc}"
        return ItemOutcome(**base, status="failed", changes=done,
                           reason=f"{applied}{text}"), None, writes
    return ItemOutcome(**base, status="applied", changes=done), state, writes


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

        def run_group(group: tuple[int, str]) -> tuple[list[ItemOutcome], int]:
            outcomes, writes, current = [], 0, state[group]
            for row in by_group[group]:
                outcome, current, n = _apply_one(posthog, row, current, dry_run, create_missing)
                outcomes.append(outcome)
                writes += n
                if outcome.status == "failed":
                    # Unknown state after a failure: re-read before the next row of this group.
                    try:
                        current = posthog.find_group(*group).group_properties
                    except PostHogError:
                        current = None
            return outcomes, writes

        results = _run_bounded(run_group, list(by_group), max_concurrency)
    outcomes = sorted([*unread, *(o for res, _ in results for o in res)], key=lambda o: o.row)
    return BatchResult(outcomes=outcomes, reads=planner.reads,
                       writes=sum(w for _, w in results), pages=planner.pages)


def failed_outcomes(rows: list[Row], reason: str) -> list[ItemOutcome]:
    """A `failed` outcome for each row, with nothing applied."""
    return [ItemOutcome(row=r.row, group_type_index=r.update.group_type_index,
                        group_key=r.update.group_key, status="failed", reason=reason[:500])
            for r in rows]


# -- the flow --------------------------------------------------------------------------------------

class _Collector:
    """Counts every outcome, streams it to the report file, keeps what the cap allows."""

    def __init__(self, report: BulkUpdateReport, sink: Any, cap: int) -> None:
        self.report, self.sink, self.cap = report, sink, cap
        self.problems: list[ItemOutcome] = []
        self.others: list[ItemOutcome] = []

    def add(self, outcome: ItemOutcome) -> None:
        self.report.count(outcome)
        if self.sink:
            self.sink.write(outcome.model_dump_json() + "\n")
        # Failures and skips are listed first; the rest fill what the cap leaves.
        keep = self.problems if outcome.status in ("failed", "skipped") else self.others
        if len(keep) < self.cap:
            keep.append(outcome)
        else:
            self.report.items_truncated = True


def _capture_token(credentials: PostHogCredentials, token: str | None,
                   project_id: int | None) -> str:
    if token:
        return token
    try:
        project = get_project(credentials, project_id=project_id)
    except PostHogError as exc:
        raise InvalidInputError("project_token", f"could not read the project's capture token "
                                f"({exc}); give project_token, or a key with project:read"
                                ) from None
    if not project.api_token:
        raise InvalidInputError("project_token", "the project has no capture token; give "
                                "project_token")
    return project.api_token


class _BulkUpdateFlow(Flow):
    """The bulk flow, whose `updates` never make a flow run too large to create.

    Prefect stores a run's parameters and its server refuses more than
    `PREFECT_SERVER_API_MAX_PARAMETER_SIZE` (512 KB), with a 422 naming no field. A large
    `updates` list passed from Python is stored as a short placeholder instead, as Prefect
    does for values it cannot serialise; the rows themselves are used in memory.
    """

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        serialized = super().serialize_parameters(parameters)
        limit = get_current_settings().server.api.max_parameter_size
        size = len(json.dumps(serialized, default=str, separators=(",", ":")))
        if limit > 0 and size > limit // 2 and isinstance(parameters.get("updates"), list):
            serialized["updates"] = (f"<{len(parameters['updates'])} updates, too large to "
                                     "store as a parameter; see the run's artifacts>")
        return serialized


def bulk_update_group_properties(
    credentials: PostHogCredentials | str,
    updates: list[GroupPropertyUpdate] | None = None,
    source_path: str | None = None,
    dry_run: bool = False,
    create_missing: bool = False,
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 5000,
    max_concurrency: Annotated[int, Field(ge=1, le=32)] = 4,
    concurrency_limit_name: str | None = None,
    project_id: int | None = None,
    report_path: str | None = None,
    max_report_items: Annotated[int, Field(ge=0)] = 5000,
    write_path: WritePath = "auto",
    project_token: str | None = None,
    verify_timeout_seconds: Annotated[float, Field(gt=0, le=3600)] = 600.0,
) -> BulkUpdateReport:
    """Bring many groups' properties to the desired values, writing only what differs.

    The input is validated completely before anything is written. Then, batch by batch (one
    Prefect task per batch, never one per item), the current state is read with the fewest
    calls (pages of 100 where cheaper than one read per group), compared, and only changed
    properties are written — one call each. Every item ends `applied`, `unchanged`,
    `skipped` (the group does not exist) or `failed` with a reason; failures do not stop
    the rest, and the flow fails at the end, after publishing its report, if any item failed.
    Re-running the same input writes nothing for items already applied.

    Args:
        credentials: PostHog credentials block (needs `group:read` and `group:write`).
        updates: The desired changes; for large inputs use `source_path` instead.
        source_path: A .csv, .json or .jsonl file of changes, streamed. CSV columns:
            `group_type_index`, `group_key`, one column per property to set (empty
            cells are left alone) and `$unset` (names separated by `;`).
        dry_run: Plan and report without writing.
        create_missing: Create groups that do not exist (else they are skipped).
        batch_size: Rows per Prefect task; memory grows with it, reads shrink with it.
        max_concurrency: Parallel writes within a batch.
        concurrency_limit_name: A Prefect global concurrency limit (with slot decay) that
            every request takes a slot from, to share one key's budget across flows and
            workers. It must exist.
        project_id: Override the block's project.
        report_path: Also write every item's outcome to this JSONL file.
        max_report_items: Most item outcomes listed in the returned report and artifact
            (failed and skipped first); all are counted.
        write_path: `api` writes one management API call per changed property;
            `capture` sends property sets as `$groupidentify` events (no per-key rate
            limit) and verifies them by reading back; `auto` uses capture when the API
            would need more than 5 minutes under the key's budget (about 2,400 writes on
            PostHog Cloud), else the API.
        project_token: The project's capture token (`phc_...`) for the capture path;
            read from the project (needs `project:read`) when not given.
        verify_timeout_seconds: How long captured values may take to show before those
            groups are written once through the management API.

    Returns:
        The report (also published as the artifacts `posthog-bulk-update` and
        `posthog-bulk-update-summary`).

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.flows import GroupPropertyUpdate, bulk_update_group_properties

        @flow
        def sync_plans():
            report = bulk_update_group_properties(
                PostHogCredentials.load("my-posthog"),
                updates=[GroupPropertyUpdate(group_type_index=0, group_key="acme",
                                             set={"plan": "enterprise"}, unset=["trial"])],
            )
            return report.applied
        ```
    """
    logger = get_run_logger()
    credentials = load_credentials(credentials)
    summary_in = validate_input(updates, source_path)
    total = summary_in.rows
    logger.info("Validated %d rows%s", total, " (dry run)" if dry_run else "")
    # One read proves the project (and host) before any write: a wrong one would otherwise
    # turn every row into a green "skipped: group does not exist".
    group_types = project_or_fail(credentials, project_id,
                                  lambda: list_group_types(credentials, project_id=project_id))
    report = BulkUpdateReport(dry_run=dry_run, report_path=report_path, reads=1)
    progress = create_progress_artifact(0.0, key="posthog-bulk-update-progress",
                                        description="Bulk group property update")
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(Path(report_path).open("w")) if report_path else None
        collected = _Collector(report, sink, max_report_items)
        pages = PageKnowledge()

        def run_api(rows: Iterable[Row], path: str, note: str | None) -> None:
            nonlocal pages
            for batch in chunks(iter(rows), batch_size):
                # quote: Prefect would otherwise walk and rebuild every row of the batch.
                try:
                    result = apply_group_property_batch(
                        credentials, quote(batch), batch[0].row, pages, dry_run=dry_run,
                        create_missing=create_missing, max_concurrency=max_concurrency,
                        concurrency_limit_name=concurrency_limit_name, project_id=project_id)
                except Exception as exc:  # the batch task crashed: its rows get outcomes
                    text = str(exc) if isinstance(exc, PostHogError) else type(exc).__name__
                    result = BatchResult(outcomes=failed_outcomes(batch, f"batch failed: "
                                                                  f"{text}"),
                                         reads=0, writes=0, pages=pages)
                pages = result.pages
                report.reads += result.reads
                report.writes += result.writes
                for outcome in result.outcomes:
                    outcome.write_path = path
                    if note and outcome.status in ("applied", "unchanged"):
                        outcome.reason = note
                    collected.add(outcome)
                update_progress_artifact(progress, 100.0 * report.total / max(total, 1),
                                         description=f"{report.total} of {total} rows")

        chosen = write_path
        if chosen == "auto" and api_minutes(summary_in.max_writes,
                                            parse_windows(credentials)) <= AUTO_CAPTURE_MINUTES:
            chosen = "api"  # even if every property differed, the API is quick enough
        captured = False
        if chosen != "api":
            captured = run_capture_path(
                credentials, lambda: read_rows(updates, source_path),
                {t.group_type_index: t.group_type for t in group_types},
                token=_capture_token(credentials, project_token, project_id),
                auto=write_path == "auto", dry_run=dry_run, create_missing=create_missing,
                verify_timeout_seconds=verify_timeout_seconds, batch_size=batch_size,
                project_id=project_id, counters=report, add=collected.add, run_api=run_api)
        report.write_path = "capture" if captured else "api"
        if not captured:
            run_api(read_rows(updates, source_path), "api", None)
        update_progress_artifact(progress, 100.0, description=f"{total} of {total} rows")
    problems, others = collected.problems, collected.others
    report.items = sorted(problems + others[: max(0, max_report_items - len(problems))],
                          key=lambda o: o.row)
    report.items_truncated = report.items_truncated or len(report.items) < report.total
    summary = {"dry run": dry_run, "rows": report.total, "applied": report.applied,
               "unchanged": report.unchanged, "skipped": report.skipped,
               "failed": report.failed, "planned": report.planned,
               "write path": report.write_path, "read calls": report.reads,
               "write calls": report.writes, "events sent": report.events}
    note = ("Every item is listed." if not report.items_truncated else
            f"Failed and skipped items are listed first, then the others up to "
            f"{max_report_items}; " + (f"every outcome is in {report_path}." if report_path
                                       else "set report_path to keep every outcome."))
    if dry_run:
        note += " Dry run: nothing was written; `changes` shows what a real run would write."
    logger.info("Bulk update: %s", ", ".join(f"{k} {cell(v)}" for k, v in summary.items()))
    bulk_update_event(project_of(credentials, project_id), report)
    finish(artifact_key("posthog-bulk-update", dry_run),
           "PostHog bulk group property update" + (" (dry run)" if dry_run else ""),
           summary, [bulk_row(o) for o in report.items], failed=report.failed, noun="item",
           note=note, detail=f"{report.failed} of {report.total} items failed")
    return report


bulk_update_group_properties = _BulkUpdateFlow(
    bulk_update_group_properties, name="posthog-bulk-update-group-properties",
    persist_result=False, task_runner=ThreadPoolTaskRunner(max_workers=2))