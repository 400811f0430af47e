"""Planning the capture path: join the stored input with HogQL pages of what PostHog holds,
and give every group a route — `skipped`, `unchanged`, `capture` (with the properties to
send), `api` (with why), or `failed` — plus the one place the write path is chosen.

What PostHog's ingestion would drop silently is routed, per group, with a reason:

- a ``$group_key`` over 400 UTF-16 code units: the event is dropped (``group_key_too_long``,
  `nodejs/src/ingestion/event-preprocessing/validate-event-properties.ts`, which measures
  JavaScript's ``toString().length``); the management API stores up to 400 characters
  (`posthog/models/group/group.py` ``max_length=400``), so such a key goes there;
- an event over capture's limits: Kafka takes 1,000,000 bytes per message
  (`rust/capture/src/config.rs`) and the event travels inside it as an escaped JSON string;
  PostHog's SDK drops events over 900 KiB (`posthog/consumer.py`). Events whose escaped
  size is over 900 KiB go through the management API instead;
- an empty ``$group_set``: ingestion creates a missing group with ``{}`` but writes
  nothing to an existing one (`batch-writing-group-store.ts`), so a group with nothing to
  change is `unchanged`, and a missing one is created only with `create_missing`;
- a group type the project has no name for: an event names its type, and a new name
  becomes a new type — or is ignored as a sixth (`group-type-manager.ts`,
  ``MAX_GROUP_TYPES_PER_TEAM = 5``); so is a name over 400 characters, which PostHog cannot
  store (`posthog/models/group_type_mapping.py`). Those groups go through the management API.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import RateWindow, parse_rates
from prefect_posthog.flows.bulk_diff import differing, same_value, utf16_length
from prefect_posthog.flows.bulk_models import Route, WritePath
from prefect_posthog.flows.bulk_reads import Page, QueryBudget, key_ranges, read_pages
from prefect_posthog.flows.bulk_store import BulkStore, Wanted

# `auto` sends through capture when the management API would need longer than this for the
# job's writes under the key's budget (480/min and 4,800/h on PostHog Cloud: ~2,400 writes).
AUTO_CAPTURE_MINUTES = 5.0
GROUP_KEY_MAX = 400  # UTF-16 code units (`validate-event-properties.ts`)
GROUP_TYPE_MAX = 400  # characters (`group_type_mapping.py`)
# PostHog's SDK caps an event at 900 KiB (`posthog/consumer.py` MAX_MSG_SIZE); the envelope
# capture wraps around it is allowed for in `_EVENT_OVERHEAD`.
EVENT_MAX_BYTES = 900 * 1024
_EVENT_OVERHEAD = 1024

BOTH = ("removes a property and sets another to null: PostHog's management API cannot "
        "store a null and capture cannot remove a property; split the row into two runs")


def api_minutes(writes: int, windows: Iterable[RateWindow]) -> float:
    """Minutes the management API needs for `writes` calls under the key's windows."""
    if writes <= 0:
        return 0.0
    return max((((writes - 1) // w.limit) * w.period for w in windows), default=0.0) / 60


def choose_path(requested: WritePath, writes: int, credentials: PostHogCredentials,
                needs_capture: bool = False) -> Literal["api", "capture"]:
    """The write path: as asked, or for `auto` the API when its writes take at most five
    minutes under the key's budget and nothing needs capture (an explicit null)."""
    if requested != "auto":
        return requested
    if needs_capture:
        return "capture"
    minutes = api_minutes(writes, parse_rates(credentials.rate_limit))
    return "api" if minutes <= AUTO_CAPTURE_MINUTES else "capture"


def escaped_size(text: str) -> int:
    """Bytes of JSON text once capture's envelope carries it as a string again (every
    quote and backslash escaped once more)."""
    return len(text.encode()) + text.count('"') + text.count("\\") + _EVENT_OVERHEAD


@dataclass
class Plan:
    """What planning found."""

    writes_needed: int = 0  # management API writes if every route went through it
    needs_capture: int = 0  # groups only capture can write (an explicit null)
    to_send: int = 0
    reads: int = 0


def _route(w: Wanted, current: dict[str, Any] | None, type_names: dict[int, str],
           create_missing: bool) -> tuple[Route, dict[str, Any] | None, str | None]:
    """(route, what to send, note) for one group."""
    state = current or {}
    if current is None and not create_missing:
        return Route.SKIPPED, None, None
    removes = [k for k in w.unset if k in state]
    nulls = [k for k in w.set_null if not same_value(state, k, None)]
    send = {**differing(current, w.set), **dict.fromkeys(nulls)}
    if removes and nulls:
        return Route.FAILED, None, BOTH
    name = type_names.get(w.gti)
    if removes:
        return Route.API, send, None  # capture cannot remove a property
    if not send and current is not None:
        return Route.UNCHANGED, None, None
    if name is None:
        return Route.API, send, (f"group type index {w.gti} has no name in this project, and "
                             "capture names a type (a new name would create a type, or be "
                             "ignored as a sixth); written through the management API")
    if len(name) > GROUP_TYPE_MAX:
        return Route.API, send, (f"the group type name is over {GROUP_TYPE_MAX} characters, "
                             "which PostHog cannot store; written through the management API")
    if utf16_length(w.key) > GROUP_KEY_MAX:
        return Route.API, send, (f"the key is {utf16_length(w.key)} UTF-16 code units long; "
                             f"PostHog's ingestion drops a $group_key over {GROUP_KEY_MAX} "
                             "(group_key_too_long), so it was written through the "
                             "management API")
    return Route.CAPTURE, send, None


def _decide(w: Wanted, current: dict[str, Any] | None, type_names: dict[int, str],
            create_missing: bool, plan: Plan) -> tuple[Any, ...]:
    route, send, note = _route(w, current, type_names, create_missing)
    text = json.dumps(send) if send is not None else None
    if route == Route.CAPTURE and text and len(text) > EVENT_MAX_BYTES // 8 and (
            escaped_size(text) + 2 * len(w.key) > EVENT_MAX_BYTES):
        route, note = Route.API, (f"its $groupidentify event would be over "
                                  f"{EVENT_MAX_BYTES // 1024} KiB, more than capture takes "
                                  "(PostHog's SDK drops it, Kafka refuses it); written "
                                  "through the management API")
    if route in (Route.CAPTURE, Route.API) and send is not None:
        removes = [k for k in w.unset if k in (current or {})]
        plan.writes_needed += len(send) + len(removes) + (current is None)
        plan.needs_capture += any(v is None for v in send.values())
        plan.to_send += route == Route.CAPTURE
    before = None
    if send and current:
        before = json.dumps({k: current[k] for k in send if k in current})
    return (route, text, before, int(current is None), note, w.gti, w.key)


def _join(store: BulkStore, page: Page, type_names: dict[int, str], create_missing: bool,
          plan: Plan) -> list[tuple[Any, ...]]:
    found = dict(page.rows)
    return [_decide(w, found.get(w.key), type_names, create_missing, plan)
            for w in store.wanted(page.gti, page.after, page.upto)]


@task(name="Plan the capture path through HogQL", cache_policy=NO_CACHE,
      persist_result=False, retries=0)
def plan_capture(credentials: PostHogCredentials, store: BulkStore, type_names: dict[int, str],
                 create_missing: bool, budget: QueryBudget,
                 project_id: int | str | None = None) -> Plan:
    """Read every stored group's current state (keyset pages, 3 at a time) and store each
    group's route; return the writes the management API alone would need."""
    plan = Plan()
    before = budget.used
    ranges = key_ranges(store)
    needed = sum(r.pages for r in ranges)
    if not budget.allows(2 * needed):  # planning, and at least as much to verify
        get_run_logger().warning(
            "Planning needs %d HogQL queries and verifying at least as many, over the key's "
            "%d an hour: the client waits for the budget between them", needed, budget.limit)
    with credentials.get_client(project_id) as posthog:
        for page in read_pages(posthog, ranges, budget):
            store.plan(_join(store, page, type_names, create_missing, plan))
    plan.reads = budget.used - before
    return plan
