"""The ingestion pipeline: captured events reach the groups store ``lag`` seconds later.

PostHog's capture answers at once and its Node pipeline applies events later, so a
``$groupidentify`` is visible through the management API only after a while. Here accepted
events wait in a queue until their time; every request (and a background loop) applies
the ones that are due. Faults, drawn per capture request: ``dropped`` (accepted, never
applied) and ``delayed`` (applied ``delay_seconds`` late).

What the pipeline refuses is counted in ``stats["dropped_reasons"]``, under PostHog's
ingestion-warning type where it records one:

- ``group_key_too_long``: a ``$group_key`` over 400 UTF-16 code units; the event is dropped
  (`validate-event-properties.ts`);
- ``invalid_event_when_process_person_profile_is_false``: a personless ``$groupidentify``,
  dropped (PostHog #89082);
- ``invalid_group_set``: a ``$group_set`` that is not an object; the group is left as it is
  (`process-groups-step.ts`);
- ``group_type_limit``: a sixth group type, ignored without a warning
  (`group-type-manager.ts`);
- ``message_size_too_large``: an event over capture's message limit, and the events after
  it in its request (``after_message_size_too_large``), never sent on (`sinks/kafka.rs`);
- ``unknown_token`` and ``fault``: accepted and dropped (the emulator's own names).
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from prefect_posthog.emulator.constants import (
    DEFAULT_INGESTION_LAG,
    GROUP_KEY_MAX,
    MAX_GROUP_TYPES,
)
from prefect_posthog.emulator.faults import INGESTION_FAULT_KINDS, FaultPlan
from prefect_posthog.emulator.group_models import get_group, new_group
from prefect_posthog.emulator.store import PostHogState


def _no_faults() -> FaultPlan:
    return FaultPlan(catalogue=INGESTION_FAULT_KINDS)


def _new_stats() -> dict[str, Any]:
    return {"requests": 0, "events": 0, "applied": 0, "dropped": 0, "ignored": 0,
            "dropped_reasons": Counter()}


def js_string(value: Any) -> str:
    """``value.toString()`` as Node's pipeline stringifies a ``$group_key``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict):
        return "[object Object]"
    if isinstance(value, list):
        return ",".join("" if v is None else js_string(v) for v in value)
    return str(value)


def utf16_length(text: str) -> int:
    """JavaScript's ``.length``: astral characters count twice."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Ingestion:
    """Accepts captured events and applies their ``$groupidentify`` after a lag."""

    state: PostHogState
    lag: float = DEFAULT_INGESTION_LAG
    faults: FaultPlan = field(default_factory=_no_faults)
    stats: dict[str, Any] = field(default_factory=_new_stats)
    _queue: list[tuple[float, int, int, dict]] = field(default_factory=list)
    _seq: itertools.count = field(default_factory=itertools.count)

    def count(self, reason: str, events: int = 1, *, dropped: bool = True) -> None:
        """Record ``events`` that did not reach the groups, and why."""
        if events:
            self.stats["dropped" if dropped else "ignored"] += events
            self.stats["dropped_reasons"][reason] += events

    def accept(self, team: int | None, events: list[dict], route: str) -> None:
        """Queue the events of one capture request (``team`` ``None``: unknown token)."""
        self.stats["requests"] += 1
        self.stats["events"] += len(events)
        fault = self.faults.pick(route)
        if team is None or fault == "dropped":  # accepted and silently dropped
            self.count("unknown_token" if team is None else "fault", len(events))
            return
        due = self.state.now() + self.lag + (
            self.faults.delay_seconds if fault == "delayed" else 0.0)
        for event in events:
            heapq.heappush(self._queue, (due, next(self._seq), team, event))

    def apply_due(self, now: float | None = None) -> int:
        """Apply every queued event whose time has come (call under the state lock)."""
        now = self.state.now() if now is None else now
        applied = 0
        while self._queue and self._queue[0][0] <= now:
            _, _, team, event = heapq.heappop(self._queue)
            if self._apply(team, event):
                applied += 1
        self.stats["applied"] += applied
        return applied

    def pending(self) -> int:
        return len(self._queue)

    def _apply(self, team: int, event: dict) -> bool:
        """One event as the Node pipeline handles it; True when a group was written."""
        props = event.get("properties") if isinstance(event.get("properties"), dict) else {}
        if event.get("event") != "$groupidentify":
            self.stats["ignored"] += 1
            return False
        key = props.get("$group_key")
        if key and utf16_length(js_string(key)) > GROUP_KEY_MAX:
            self.count("group_key_too_long")
            return False
        if props.get("$process_person_profile") is False:
            self.count("invalid_event_when_process_person_profile_is_false")
            return False
        group_type = props.get("$group_type")
        if not group_type or not key:  # no group, no warning
            self.stats["ignored"] += 1
            return False
        group_set = props.get("$group_set")
        if group_set is not None and not isinstance(group_set, dict):
            self.count("invalid_group_set", dropped=False)
            return False
        index = self._type_index(team, group_type)
        if index is None:
            self.count("group_type_limit", dropped=False)
            return False
        return self._upsert(team, index, js_string(key).replace("\x00", "\ufffd"),
                            group_set or {})

    def _upsert(self, team: int, index: int, key: str, group_set: dict) -> bool:
        """A missing group is created (even with no properties); an existing one gets a
        shallow merge, where a null value is stored, not unset (`group-update.ts`)."""
        group = get_group(self.state, team, index, key)
        if group is None:
            new_group(self.state, team, index, key, group_set, self.state.now())
        elif group_set:
            props = group.props()
            props.update(group_set)
            group.set_props(props)
        return True

    def _type_index(self, team: int, name: Any) -> int | None:
        """The type's index, a new type taking the lowest free one of 0-4."""
        types = self.state.data["group_types"].setdefault(str(team), {})
        name = str(name)
        for index, existing in types.items():
            if existing == name:
                return int(index)
        free = [i for i in range(MAX_GROUP_TYPES) if str(i) not in types]
        if not free:
            return None
        types[str(free[0])] = name
        return free[0]
