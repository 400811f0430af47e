"""The bulk job's second write path: property sets as `$groupidentify` events through
PostHog's capture API, verified by reading them back.

Capture has no per-key rate limit, so a million groups take minutes to send where the
management API (4,800 calls an hour per key) would take days. But ingestion applies events
later and silently drops what it cannot attribute: an item counts as `applied` only once
reading it back shows its values. Reads are HogQL keyset pages (`bulk_reads`); groups
still not visible at the deadline — or when another read would go over the key's HogQL
budget — are written once through the management API, and whatever remains is `failed`
with the reason. Unsets, and groups `bulk_plan` routes away from capture, stay on the
management API path.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.utilities.annotations import quote

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import InvalidInputError, PostHogError, group_identify_event
from prefect_posthog.flows.bulk_api import ApiPath
from prefect_posthog.flows.bulk_diff import NEW_GROUP, describe_set, visible
from prefect_posthog.flows.bulk_models import ItemOutcome, ItemPath, ItemStatus, Route
from prefect_posthog.flows.bulk_plan import Plan, plan_capture
from prefect_posthog.flows.bulk_pool import run_bounded
from prefect_posthog.flows.bulk_reads import (
    HOGQL_BUDGET,
    QueryBudget,
    key_ranges,
    read_pages,
)
from prefect_posthog.flows.bulk_report import Collector, timed
from prefect_posthog.flows.bulk_store import BulkStore
from prefect_posthog.tasks import get_project

EVENTS_PER_REQUEST = 1000
# PostHog's SDK keeps a batch under 5 MiB of JSON (`posthog/consumer.py` BATCH_SIZE_LIMIT),
# well under capture's 20 MiB body limit (`rust/capture/src/router.rs`).
REQUEST_MAX_BYTES = 5 * 1024 * 1024
SEND_PER_TASK = 50_000  # groups per Prefect task: a million groups are 20 task runs
SENDERS = 2  # requests in flight: one is built while the other is on the wire
Item = tuple[int, str, str]  # group type index, key, JSON of what to send

OVER_BUDGET = (f"reading back again would go over HogQL's {HOGQL_BUDGET} queries an hour for "
               "this key (HogQLQueryThrottle, `posthog/rate_limit.py`); written through the "
               "management API")


def capture_token(credentials: PostHogCredentials, token: str | None,
                  project_id: int | None) -> str:
    """The project's capture token: as given, else read from the project."""
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


def _requests(items: list[Item], type_names: dict[int, str]) -> list[list[Item]]:
    """Items packed into requests of at most 1,000 events and about 5 MiB."""
    out: list[list[Item]] = [[]]
    size = 0
    for item in items:
        gti, key, send = item
        cost = len(send) + 2 * len(key) + len(type_names[gti]) + 400
        if out[-1] and (len(out[-1]) >= EVENTS_PER_REQUEST or size + cost > REQUEST_MAX_BYTES):
            out.append([])
            size = 0
        out[-1].append(item)
        size += cost
    return [chunk for chunk in out if chunk]


@task(name="Send $groupidentify events", cache_policy=NO_CACHE, persist_result=False,
      retries=0, task_run_name="capture-{first}")
def send_group_identify(credentials: PostHogCredentials, token: str, type_names: dict[int, str],
                        items: list[Item], first: int) -> tuple[int, list[tuple[int, str]],
                                                                str | None]:
    """Send one event per group, 1,000 per request, two requests in flight; return events
    sent, the groups whose request capture refused, and why."""
    with credentials.get_capture_client(token) as capture:
        def send(chunk: list[Item]) -> tuple[int, list[tuple[int, str]], str | None]:
            events = [group_identify_event(type_names[gti], key, json.loads(props))
                      for gti, key, props in chunk]
            try:
                capture.send(events)
            except PostHogError as exc:
                return 0, [(gti, key) for gti, key, _ in chunk], str(exc)
            return len(events), [], None

        results = run_bounded(send, _requests(items, type_names), SENDERS)
    refused = [group for _, lost, _ in results for group in lost]
    reason = next((why for _, _, why in results if why), None)
    if refused:
        get_run_logger().warning("Capture refused %d events (%s); they will be written through "
                                 "the management API", len(refused), reason)
    return sum(sent for sent, _, _ in results), refused, reason


@dataclass
class Verification:
    seen: int
    stopped: str | None  # why verification stopped early, if it did


def _check(store: BulkStore, page_gti: int, after: str | None, upto: str,
           found: dict[str, dict]) -> list[tuple[int, str]]:
    return [(page_gti, key) for key, send in store.sent(page_gti, after, upto)
            if visible(found.get(key), json.loads(send))]


@task(name="Verify captured group properties", cache_policy=NO_CACHE, persist_result=False,
      retries=0)
def verify_captured(credentials: PostHogCredentials, store: BulkStore, timeout_seconds: float,
                    budget: QueryBudget, project_id: int | str | None = None) -> Verification:
    """Read back, with backoff, only the key ranges still holding groups not seen with their
    values, until none is left, the deadline passes or the HogQL budget would run out."""
    logger = get_run_logger()
    seen, delay, stopped = 0, 1.0, None
    deadline = time.monotonic() + timeout_seconds
    with credentials.get_client(project_id) as posthog:
        while True:
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            ranges = key_ranges(store, pending=True)
            if not ranges:
                break
            if not budget.allows(sum(r.pages for r in ranges)):
                stopped = OVER_BUDGET
                break
            for page in read_pages(posthog, ranges, budget):
                hits = _check(store, page.gti, page.after, page.upto, dict(page.rows))
                store.mark_seen(hits)
                seen += len(hits)
            left = store.count(Route.CAPTURE, unseen=True)
            logger.info("Verification: %d groups show their values, %d still pending", seen,
                        left)
            if not left or time.monotonic() >= deadline:
                break
            delay = min(delay * 2, 30.0)
    return Verification(seen, stopped)


def _changes(upd: str, send: dict, before: dict | None, created: bool) -> list[str]:
    sets, _, nulls = json.loads(upd)
    return ([NEW_GROUP] if created else []) + [
        describe_set(before, k, v) for k, v in sets.items() if k in send] + [
        describe_set(before, k, None) for k in nulls if k in send]


def _changes_anything(upd: str, send: dict) -> bool:
    sets, _, nulls = json.loads(upd)
    return any(k in send for k in sets) or any(k in send for k in nulls)


@dataclass
class CapturePath:
    """Plan, send, verify, then hand what is left to the management API path."""

    credentials: PostHogCredentials
    store: BulkStore
    collector: Collector
    dry_run: bool
    create_missing: bool
    verify_timeout_seconds: float
    project_id: int | None

    def __post_init__(self) -> None:
        self.budget = QueryBudget()

    def plan(self, type_names: dict[int, str]) -> Plan:
        plan = plan_capture(self.credentials, quote(self.store), type_names,
                            self.create_missing, quote(self.budget), project_id=self.project_id)
        self.collector.report.reads += plan.reads
        get_run_logger().info("Capture plan: %d groups to send; the management API alone "
                              "would need %d writes", plan.to_send, plan.writes_needed)
        return plan

    def run(self, api: ApiPath, token: str, type_names: dict[int, str]) -> None:
        report = self.collector.report
        stopped = None
        if not self.dry_run:
            with timed(report, "sending"):
                self._send(token, type_names)
            if self.store.count(Route.CAPTURE):
                with timed(report, "verification"):
                    before = self.budget.used
                    stopped = verify_captured(self.credentials, quote(self.store),
                                              self.verify_timeout_seconds, quote(self.budget),
                                              project_id=self.project_id).stopped
                    report.reads += self.budget.used - before
        with timed(report, "report"):
            self._record()
        with timed(report, "api"):
            api.run(self.store.rows(Route.API), ItemPath.API)
            api.run(self.store.rows(Route.RESEND), ItemPath.API_AFTER_CAPTURE)
            late = self.store.count(Route.CAPTURE, unseen=True) if not self.dry_run else 0
            if late:
                why = stopped or (f"not visible {self.verify_timeout_seconds:.0f}s after "
                                  "capture (dropped or slow ingestion); written through the "
                                  "management API")
                get_run_logger().warning("%d groups not verified (%s)", late, why)
                api.run(self.store.rows(Route.CAPTURE, unseen=True), ItemPath.API_AFTER_CAPTURE,
                        note=why)

    def _send(self, token: str, type_names: dict[int, str]) -> None:
        refused: list[tuple[int, str]] = []
        reasons: list[str] = []
        batch: list[Item] = []
        sent = 0
        for item in self.store.to_send():
            batch.append(item)
            if len(batch) >= SEND_PER_TASK:
                self._send_batch(token, type_names, batch, sent, refused, reasons)
                sent, batch = sent + len(batch), []
        if batch:
            self._send_batch(token, type_names, batch, sent, refused, reasons)
        if refused:  # rerouted once the store's cursor is done with the groups
            self.store.reroute(refused, Route.RESEND, f"capture refused the request "
                               f"({reasons[0]}); written through the management API")

    def _send_batch(self, token: str, type_names: dict[int, str], batch: list[Item],
                    first: int, refused: list[tuple[int, str]], reasons: list[str]) -> None:
        events, lost, reason = send_group_identify(self.credentials, token, type_names,
                                                   quote(batch), first=first)
        self.collector.report.events += events
        refused += lost
        reasons += [reason] if reason else []

    def _record(self) -> None:
        """Outcomes of the rows whose group needs no management API call; an outcome the
        report will neither list nor write to its file is only counted."""
        collector = self.collector
        for row, gti, key, upd, route, send, before, created, seen, note, n in (
                self.store.outcome_rows()):
            if route == Route.CAPTURE and not (seen or self.dry_run):
                continue  # not verified: the management API path writes it
            status, path, reason = _RECORDED.get(route, (None, None, None))
            if route == Route.CAPTURE:
                # A group's only row changes what was sent: no need to parse either.
                changed = n == 1 or bool(created) or _changes_anything(upd, json.loads(send))
                status = (ItemStatus.UNCHANGED if not changed else ItemStatus.PLANNED
                          if self.dry_run else ItemStatus.APPLIED)
                path = ItemPath.CAPTURE if changed else None
            if status is None:
                continue  # on the management API path
            if not collector.wants(status):
                collector.tally(status)
                continue
            changes = (_changes(upd, json.loads(send), before and json.loads(before),
                                bool(created)) if path else [])
            collector.add(ItemOutcome.model_construct(
                row=row, group_type_index=gti, group_key=key, status=status,
                changes=changes, reason=reason or note, write_path=path))
        collector.progress()


# What a route means for its rows' outcomes: (status, write path, reason).
_RECORDED = {
    Route.SKIPPED: (ItemStatus.SKIPPED, None, "group does not exist (create_missing is off)"),
    Route.UNCHANGED: (ItemStatus.UNCHANGED, None, None),
    Route.FAILED: (ItemStatus.FAILED, None, None),
    Route.CAPTURE: (None, None, None),
}
