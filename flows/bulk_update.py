"""Bulk group property update: read the input, plan against PostHog, write only what differs.

The job's story is the flow below; each step lives in a sibling module: `bulk_input`
(and `bulk_frames`) read and validate the input into the run's on-disk `bulk_store`;
`bulk_plan` chooses the write path and plans the capture path; `bulk_api` and
`bulk_capture` write; `bulk_reads` reads back within PostHog's query limits;
`bulk_report` counts, streams and publishes the outcomes.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Annotated, Any

from prefect import Flow
from prefect.logging import get_run_logger
from prefect.settings import get_current_settings
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field, ValidatorFunctionWrapHandler, WrapValidator

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.flows import bulk_frames
from prefect_posthog.flows.blocks import load_credentials
from prefect_posthog.flows.bulk_api import ApiPath
from prefect_posthog.flows.bulk_capture import CapturePath, capture_token
from prefect_posthog.flows.bulk_input import spill_input
from prefect_posthog.flows.bulk_models import (
    BulkUpdateReport,
    GroupPropertyUpdate,
    ItemPath,
    WritePath,
)
from prefect_posthog.flows.bulk_plan import choose_path
from prefect_posthog.flows.bulk_report import collecting, conclude, timed
from prefect_posthog.flows.bulk_store import BulkStore
from prefect_posthog.flows.preflight import project_or_fail
from prefect_posthog.tasks import list_group_types


def _rows_or_table(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # A DataFrame or Arrow table is read through Arrow as it is; a list is validated row by
    # row by Prefect (naming `updates.<index>`), and the form shows the list's schema.
    return value if bulk_frames.is_tabular(value) else handler(value)


Updates = Annotated[list[GroupPropertyUpdate] | None, WrapValidator(_rows_or_table)]


class _BulkUpdateFlow(Flow):
    """The bulk flow, whose `updates` never make a flow run too large to create.

    Prefect stores a run's parameters and its server refuses more than
    `PREFECT_SERVER_API_MAX_PARAMETER_SIZE` (512 KB), with a 422 naming no field. A large
    `updates` list passed from Python, or any DataFrame or Arrow table, is stored as a short
    placeholder instead, as Prefect does for values it cannot serialise; the rows
    themselves are used in memory.
    """

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        updates = parameters.get("updates")
        if bulk_frames.is_tabular(updates):
            return {**super().serialize_parameters({**parameters, "updates": None}),
                    "updates": bulk_frames.describe(updates)}
        serialized = super().serialize_parameters(parameters)
        limit = get_current_settings().server.api.max_parameter_size
        size = len(json.dumps(serialized, default=str, separators=(",", ":")))
        if limit > 0 and size > limit // 2 and isinstance(updates, list):
            serialized["updates"] = (f"<{len(updates)} updates, too large to store as a "
                                     "parameter; see the run's artifacts>")
        return serialized


bulk_flow = partial(_BulkUpdateFlow, name="posthog-bulk-update-group-properties",
                    persist_result=False, task_runner=ThreadPoolTaskRunner(max_workers=2))


@bulk_flow
# A flow's parameters are its Run form in the Prefect UI: one field each, not an object.
def bulk_update_group_properties(  # noqa: PLR0913
    credentials: PostHogCredentials | str,
    updates: Updates = None,
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

    The input is validated completely, into a temporary on-disk store, before anything is
    written. Then the current state is read with the fewest calls and only changed
    properties are written: through the management API (one call per property, batch by
    batch, one Prefect task per batch, never one per item) or, at scale, as
    `$groupidentify` events through capture, each read back before it counts; what
    PostHog's ingestion would drop (a key over 400 UTF-16 code units, an event over
    900 KiB, a group type without a name or with one over 400 characters) goes through the
    management API instead, with the reason in its outcome. Every item
    ends `applied`, `unchanged`, `skipped` (the group does not exist) or `failed` with a
    reason; failures do not stop the rest, and the flow fails at the end, after
    publishing its report, if any item failed. Re-running the same input writes nothing
    for items already applied. Memory stays flat in the input's size.

    Args:
        credentials: PostHog credentials block (needs `group:read` and `group:write`).
        updates: The desired changes: a list of rows, or a pandas or polars DataFrame or
            a pyarrow table (anything with `__arrow_c_stream__`) with the CSV's columns.
            A null cell means "no change"; list names in `$set_null` to store a null.
        source_path: A .csv, .json, .jsonl or .parquet file, local or at an fsspec URL
            (`s3://`, `gs://`, `az://`, `file://`, with the file system's usual
            credentials), streamed. Columns: `group_type_index`, `group_key`, one column
            per property to set (empty cells are left alone), `$unset` and `$set_null`
            (names separated by `;`).
        dry_run: Plan and report without writing.
        create_missing: Create groups that do not exist (else they are skipped).
        batch_size: Rows per Prefect task on the management API path.
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
            PostHog Cloud) or a null is to be stored, else the API.
        project_token: The project's capture token (`phc_...`) for the capture path;
            read from the project (needs `project:read`) when not given.
        verify_timeout_seconds: How long captured values may take to show before those
            groups are written once through the management API.

    Returns:
        The report (also published as the artifacts `posthog-bulk-update` and
        `posthog-bulk-update-summary`), with the seconds each phase took in `timings`.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.flows import GroupPropertyUpdate, bulk_update_group_properties

        @flow
        def sync_plans() -> int:
            report = bulk_update_group_properties(
                PostHogCredentials.load("my-posthog"),
                updates=[GroupPropertyUpdate(group_type_index=0, group_key="company-00001",
                                             set={"plan": "enterprise"})],
            )
            return report.applied

        sync_plans()
        ```
    """
    credentials = load_credentials(credentials)
    report = BulkUpdateReport(dry_run=dry_run, report_path=report_path, reads=1)
    with BulkStore.temporary() as store:
        with timed(report, "input"):
            summary = spill_input(store, updates, source_path)
        get_run_logger().info("Validated %d rows%s", summary.rows, " (dry run)" * dry_run)
        # One read proves the project (and host) before any write: a wrong one would
        # otherwise turn every row into a green "skipped: group does not exist".
        types = {t.group_type_index: t.group_type for t in project_or_fail(
            credentials, project_id, lambda: list_group_types(credentials,
                                                               project_id=project_id))}
        with collecting(report, report_path, max_report_items, summary.rows) as collector:
            api = ApiPath(credentials, collector, dry_run, create_missing, batch_size,
                          max_concurrency, concurrency_limit_name, project_id)
            path = choose_path(write_path, summary.max_writes, credentials, summary.nulls > 0)
            if path == "capture":
                token = capture_token(credentials, project_token, project_id)
                capture = CapturePath(credentials, store, collector, dry_run, create_missing,
                                      verify_timeout_seconds, project_id)
                with timed(report, "planning"):
                    plan = capture.plan(types)
                path = choose_path(write_path, plan.writes_needed, credentials,
                                   plan.needs_capture > 0)
            report.write_path = path
            if path == "capture":
                capture.run(api, token, types)
            else:
                with timed(report, "api"):
                    api.run(store.rows(), ItemPath.API)
    return conclude(credentials, project_id, report, collector)
