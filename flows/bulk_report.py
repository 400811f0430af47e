"""The bulk job's report: every outcome counted and streamed to the report file as it
comes, failed and skipped items kept first (up to the cap), then the others; progress
while it runs; and the summary, table and event at the end."""

from __future__ import annotations

import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.logging import get_run_logger

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.flows.bulk_models import (
    PROBLEMS,
    BulkUpdateReport,
    ItemOutcome,
    ItemStatus,
)
from prefect_posthog.flows.events import bulk_update_event, project_of
from prefect_posthog.flows.report_rows import bulk_row
from prefect_posthog.flows.reporting import artifact_key, cell, finish

_PROGRESS_EVERY = 5.0  # seconds between progress artifact updates


class Collector:
    """Counts every outcome, streams it to the report file, keeps what the cap allows."""

    def __init__(self, report: BulkUpdateReport, sink: IO[str] | None, cap: int,
                 total: int) -> None:
        self.report, self.sink, self.cap, self.expected = report, sink, cap, total
        self.problems: list[ItemOutcome] = []
        self.others: list[ItemOutcome] = []
        self._progress: Any = None
        self._shown_at = 0.0
        self._tallied: Counter[ItemStatus] = Counter()

    def add(self, outcome: ItemOutcome) -> None:
        self.report.count(outcome)
        if self.sink:
            self.sink.write(outcome.model_dump_json() + "\n")
        # Failures and skips are listed first; the rest fill what the cap leaves.
        keep = self.problems if outcome.status in PROBLEMS else self.others
        if len(keep) < self.cap:
            keep.append(outcome)
        else:
            self.report.items_truncated = True

    def wants(self, status: ItemStatus) -> bool:
        """Whether an outcome of this status is written or listed (else only counted)."""
        keep = self.problems if status in PROBLEMS else self.others
        return self.sink is not None or len(keep) < self.cap

    def tally(self, status: ItemStatus) -> None:
        """Count an outcome that is neither written nor listed (added to the report's
        counters in bulk: a million of them are a million plain increments)."""
        self._tallied[status] += 1

    def _add_tallies(self) -> None:
        if self._tallied:
            for status, count in self._tallied.items():
                self.report.total += count
                setattr(self.report, status, getattr(self.report, status) + count)
            self.report.items_truncated = True
            self._tallied.clear()

    def progress(self, done: bool = False) -> None:
        """The progress artifact, updated at most every few seconds."""
        self._add_tallies()
        now = time.monotonic()
        if not done and now - self._shown_at < _PROGRESS_EVERY and self._progress:
            return
        self._shown_at = now
        count = self.expected if done else self.report.total
        value = 100.0 * count / max(self.expected, 1)
        text = f"{count} of {self.expected} rows"
        if self._progress is None:
            self._progress = create_progress_artifact(value, key="posthog-bulk-update-progress",
                                                      description="Bulk group property update")
        else:
            update_progress_artifact(self._progress, value, description=text)

    def items(self) -> list[ItemOutcome]:
        self._add_tallies()
        problems, others = self.problems, self.others
        return sorted(problems + others[: max(0, self.cap - len(problems))],
                      key=lambda o: o.row)


@contextmanager
def collecting(report: BulkUpdateReport, report_path: str | None, cap: int, total: int):
    """A `Collector` writing to `report_path` (if given) for the length of the block."""
    with ExitStack() as stack:
        sink = stack.enter_context(Path(report_path).open("w")) if report_path else None
        collector = Collector(report, sink, cap, total)
        collector.progress()
        yield collector
        collector.progress(done=True)


@contextmanager
def timed(report: BulkUpdateReport, phase: str):
    """Add the block's wall time to `report.timings[phase]`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        report.timings[phase] = round(report.timings.get(phase, 0.0)
                                      + time.perf_counter() - start, 3)


def conclude(credentials: PostHogCredentials, project_id: int | None,
             report: BulkUpdateReport, collector: Collector) -> BulkUpdateReport:
    """Publish the summary, the table and the event; fail the run if any item failed."""
    cap = collector.cap
    report.items = collector.items()
    report.items_truncated = report.items_truncated or len(report.items) < report.total
    summary = {"dry run": report.dry_run, "rows": report.total, "applied": report.applied,
               "unchanged": report.unchanged, "skipped": report.skipped,
               "failed": report.failed, "planned": report.planned,
               "write path": report.write_path, "read calls": report.reads,
               "write calls": report.writes, "events sent": report.events}
    note = ("Every item is listed." if not report.items_truncated else
            f"Failed and skipped items are listed first, then the others up to {cap}; "
            + (f"every outcome is in {report.report_path}." if report.report_path
               else "set report_path to keep every outcome."))
    if report.dry_run:
        note += " Dry run: nothing was written; `changes` shows what a real run would write."
    get_run_logger().info("Bulk update: %s; seconds: %s",
                          ", ".join(f"{k} {cell(v)}" for k, v in summary.items()),
                          ", ".join(f"{k} {v:.1f}" for k, v in report.timings.items()))
    bulk_update_event(project_of(credentials, project_id), report)
    title = "PostHog bulk group property update" + (" (dry run)" if report.dry_run else "")
    finish(artifact_key("posthog-bulk-update", report.dry_run), title, summary,
           [bulk_row(o) for o in report.items], failed=report.failed, noun="item", note=note,
           detail=f"{report.failed} of {report.total} items failed")
    return report
