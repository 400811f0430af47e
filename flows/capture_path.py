"""The bulk flow's second write path: property sets as `$groupidentify` events through
PostHog's capture API, verified through the management API.

Capture has no per-key rate limit, so 100,000 groups take seconds to send where the
management API (4,800 calls an hour per key) would take a day. But ingestion applies events
later and silently drops what it cannot attribute: an item counts as `applied` only once
reading it back shows its values. Reads use HogQL (50,000 groups per call); items still not
visible at the deadline are written once through the management API, and whatever remains
is `failed` with the reason. Unsets, rows of group types without a name, and groups whose
rows also unset something stay on the management API path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import (
    QUERY_MAX_ROWS,
    PostHogError,
    RateWindow,
    group_identify_event,
)
from prefect_posthog.flows.models import ItemOutcome

WritePath = Literal["auto", "api", "capture"]
# `auto` sends through capture when the management API would need longer than this for the
# job's writes under the key's budget (480/min and 4,800/h on PostHog Cloud: ~2,400 writes).
AUTO_CAPTURE_MINUTES = 5.0
EVENTS_PER_REQUEST = 1000

GroupId = tuple[int, str]


def api_minutes(writes: int, windows: Iterable[RateWindow]) -> float:
    """Minutes the management API needs for `writes` calls under the key's windows."""
    if writes <= 0:
        return 0.0
    return max((((writes - 1) // w.limit) * w.period for w in windows), default=0.0) / 60


def same_value(current: dict[str, Any], key: str, value: Any) -> bool:
    # 1 == True in Python, but PostHog stores JSON: compare with types.
    return key in current and json.dumps(current[key], sort_keys=True) == json.dumps(
        value, sort_keys=True)


NEW_GROUP = "(new group)"
_SHOWN = 40  # characters of a value shown in a report cell


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 1] + "…"


def describe_set(current: dict[str, Any] | None, key: str, value: Any) -> str:
    """One change as a report shows it: `plan: "free" → "growth"`."""
    before = _shown(current[key]) if current and key in current else "(none)"
    return f"{key}: {before} → {_shown(value)}"


def describe_unset(current: dict[str, Any], key: str) -> str:
    return f"{key}: {_shown(current[key])} → (removed)"


def visible(current: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """Whether a group read back shows every wanted value."""
    return current is not None and all(same_value(current, k, v) for k, v in wanted.items())


@task(name="Read PostHog groups through HogQL", cache_policy=NO_CACHE, persist_result=False,
      retries=0)
def read_groups(credentials: PostHogCredentials, group_type_indexes: list[int],
                keys: set[GroupId] | None = None, project_id: int | str | None = None
                ) -> tuple[dict[GroupId, dict[str, Any]], int]:
    """Properties of the groups of these types (only `keys`, if given), and the calls made."""
    found: dict[GroupId, dict[str, Any]] = {}
    calls = 0
    with credentials.get_client(project_id) as posthog:
        for gti in group_type_indexes:
            after = None
            while True:
                page = posthog.query_groups(gti, after=after)
                calls += 1
                for key, props in page:
                    if keys is None or (gti, key) in keys:
                        found[(gti, key)] = props
                if len(page) < QUERY_MAX_ROWS:
                    break
                after = page[-1][0]
    return found, calls


@task(name="Send $groupidentify events", cache_policy=NO_CACHE, persist_result=False,
      retries=0, task_run_name="capture-{first}")
def send_group_identify(credentials: PostHogCredentials, token: str, type_names: dict[int, str],
                        items: list[tuple[int, str, dict[str, Any]]], first: int
                        ) -> tuple[int, list[GroupId]]:
    """Send one event per group, 1,000 per request; return events sent and groups refused."""
    sent, refused = 0, []
    with credentials.get_capture_client(token) as capture:
        for start in range(0, len(items), EVENTS_PER_REQUEST):
            chunk = items[start:start + EVENTS_PER_REQUEST]
            events = [group_identify_event(type_names[gti], key, props)
                      for gti, key, props in chunk]
            try:
                capture.send(events)
                sent += len(events)
            except PostHogError as exc:
                get_run_logger().warning("Capture refused %d events (%s); they will be "
                                         "written through the management API", len(events),
                                         exc)
                refused += [(gti, key) for gti, key, _ in chunk]
    return sent, refused


@task(name="Verify captured group properties", cache_policy=NO_CACHE, persist_result=False,
      retries=0)
def verify_captured(credentials: PostHogCredentials, wanted: dict[GroupId, dict[str, Any]],
                    timeout_seconds: float, project_id: int | str | None = None
                    ) -> tuple[set[GroupId], int]:
    """Read back with backoff until every group shows its values or the deadline passes.

    Returns the groups seen with their values and the read calls made.
    """
    logger = get_run_logger()
    pending = dict(wanted)
    seen: set[GroupId] = set()
    calls, delay = 0, 1.0
    deadline = time.monotonic() + timeout_seconds
    with credentials.get_client(project_id) as posthog:
        while pending:
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            for gti in sorted({g for g, _ in pending}):
                after = None
                while True:
                    page = posthog.query_groups(gti, after=after)
                    calls += 1
                    for key, props in page:
                        if (gti, key) in pending and visible(props, pending[(gti, key)]):
                            del pending[(gti, key)]
                            seen.add((gti, key))
                    if len(page) < QUERY_MAX_ROWS:
                        break
                    after = page[-1][0]
            logger.info("Verification: %d of %d groups show their values", len(seen),
                        len(wanted))
            if not pending or time.monotonic() >= deadline:
                break
            delay = min(delay * 2, 30.0)
    return seen, calls


def run_capture_path(
    credentials: PostHogCredentials,
    rows: Callable[[], Iterable[Any]],
    type_names: dict[int, str],
    *,
    token: str,
    auto: bool,
    dry_run: bool,
    create_missing: bool,
    verify_timeout_seconds: float,
    batch_size: int,
    project_id: int | str | None,
    counters: Any,
    add: Callable[[ItemOutcome], None],
    run_api: Callable[[Iterable[Any], str, str | None], None],
) -> bool:
    """Plan, send, verify; hand the rest to the management API path (`run_api`).

    `rows()` streams the validated input rows (read three times, never held: a 100,000-row
    input keeps only one dict per group in memory); `add(outcome)` records an outcome;
    `run_api(rows, write_path, note)` writes rows through the management API. Returns
    False, having recorded and written nothing, when `auto` finds the job small enough
    for the API.
    """
    logger = get_run_logger()
    wanted: dict[GroupId, dict[str, Any]] = {}
    unsets: dict[GroupId, set[str]] = {}
    for row in rows():
        gid = (row.update.group_type_index, row.update.group_key)
        wanted.setdefault(gid, {}).update(row.update.set)
        if row.update.unset:
            unsets.setdefault(gid, set()).update(row.update.unset)
    snapshot, calls = read_groups(credentials, sorted({g for g, _ in wanted}),
                                  keys=set(wanted), project_id=project_id)
    counters.reads += calls
    route: dict[GroupId, str] = {}  # skipped, unchanged, api or capture
    send: dict[GroupId, dict[str, Any]] = {}  # what each captured group is sent
    before: dict[GroupId, dict[str, Any]] = {}  # their values before, for the report
    creates: set[GroupId] = set()
    writes_needed = 0
    for gid, props in wanted.items():
        current = snapshot.pop(gid, None)
        removes = [k for k in unsets.get(gid, ()) if k in (current or {})]
        if current is None and not create_missing:
            route[gid] = "skipped"
        elif removes or gid[0] not in type_names:
            route[gid] = "api"  # capture cannot remove a property or name the type
            writes_needed += len(removes) + len(props)
        else:
            differing = {k: v for k, v in props.items() if not same_value(current or {}, k, v)}
            if current is None:
                creates.add(gid)
            if differing or current is None:
                route[gid], send[gid] = "capture", differing
                before[gid] = {k: current[k] for k in differing if current and k in current}
                writes_needed += len(differing) + (current is None)
            else:
                route[gid] = "unchanged"
    del wanted, snapshot
    minutes = api_minutes(writes_needed, parse_windows(credentials))
    if auto and minutes <= AUTO_CAPTURE_MINUTES:
        logger.info("auto: %d writes take ~%.1f min through the management API: using it",
                    writes_needed, minutes)
        return False
    logger.info("Capture path: %d groups to send (the management API alone would need "
                "~%.0f min for %d writes)", len(send), minutes, writes_needed)
    seen: set[GroupId] = set()
    if not dry_run:
        refused: set[GroupId] = set()
        items = [(gti, key, props) for (gti, key), props in send.items()]
        for start in range(0, len(items), batch_size):
            sent, lost = send_group_identify(credentials, token, type_names,
                                             items[start:start + batch_size], first=start)
            counters.events += sent
            refused.update(lost)
        del items
        pending = {gid: props for gid, props in send.items() if gid not in refused}
        if pending:
            seen, calls = verify_captured(credentials, pending, verify_timeout_seconds,
                                          project_id=project_id)
            counters.reads += calls
    for row in rows():
        gid = (row.update.group_type_index, row.update.group_key)
        path = route[gid]
        changes = ([NEW_GROUP] if gid in creates else []) + [
            describe_set(before.get(gid), k, v) for k, v in row.update.set.items()
            if k in send.get(gid, {})]
        base = {"row": row.row, "group_type_index": gid[0], "group_key": gid[1]}
        if path == "skipped":
            add(ItemOutcome(**base, status="skipped",
                            reason="group does not exist (create_missing is off)"))
        elif path == "unchanged" or (path == "capture" and not changes):
            add(ItemOutcome(**base, status="unchanged"))
        elif path == "capture" and dry_run:
            add(ItemOutcome(**base, status="planned", changes=changes, write_path="capture"))
        elif path == "capture" and gid in seen:
            add(ItemOutcome(**base, status="applied", changes=changes, write_path="capture"))
    run_api((r for r in rows() if route[(r.update.group_type_index, r.update.group_key)]
             == "api"), "api", None)
    missing = {gid for gid in send if gid not in seen} if not dry_run else set()
    if missing:
        logger.warning("%d groups did not show their values within %.0fs of capture; writing "
                       "them once through the management API", len(missing),
                       verify_timeout_seconds)
        run_api((r for r in rows() if (r.update.group_type_index, r.update.group_key)
                 in missing), "api-after-capture",
                f"not visible {verify_timeout_seconds:.0f}s after capture (dropped or slow "
                "ingestion); written through the management API")
    return True


def parse_windows(credentials: PostHogCredentials) -> tuple[RateWindow, ...]:
    from prefect_posthog.client import parse_rates

    return tuple(parse_rates(credentials.rate_limit))
