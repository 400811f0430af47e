"""The ingestion pipeline: captured events reach the groups store ``lag`` seconds later.

PostHog's capture answers at once and its Node pipeline applies events later, so a
``$groupidentify`` is visible through the management API only after a while. Here accepted
events wait in a queue until their time; every request (and a background loop) applies
the ones that are due. Faults, drawn per capture request: ``dropped`` (accepted, never
applied) and ``delayed`` (applied ``delay_seconds`` late).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from prefect_posthog.emulator.constants import DEFAULT_INGESTION_LAG, MAX_GROUP_TYPES
from prefect_posthog.emulator.faults import INGESTION_FAULT_KINDS, FaultPlan
from prefect_posthog.emulator.group_models import get_group, new_group
from prefect_posthog.emulator.store import PostHogState


def _no_faults() -> FaultPlan:
    return FaultPlan(catalogue=INGESTION_FAULT_KINDS)


def _new_stats() -> dict[str, int]:
    return {"requests": 0, "events": 0, "applied": 0, "dropped": 0, "ignored": 0}


@dataclass
class Ingestion:
    """Accepts captured events and applies their ``$groupidentify`` after a lag."""

    state: PostHogState
    lag: float = DEFAULT_INGESTION_LAG
    faults: FaultPlan = field(default_factory=_no_faults)
    stats: dict[str, int] = field(default_factory=_new_stats)
    _queue: list[tuple[float, int, int, dict]] = field(default_factory=list)
    _seq: itertools.count = field(default_factory=itertools.count)

    def accept(self, team: int | None, events: list[dict], route: str) -> None:
        """Queue the events of one capture request (``team`` ``None``: unknown token)."""
        self.stats["requests"] += 1
        self.stats["events"] += len(events)
        fault = self.faults.pick(route)
        if team is None or fault == "dropped":
            self.stats["dropped"] += len(events)  # accepted and silently dropped
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
        """One ``$groupidentify`` as the Node pipeline's group step applies it."""
        props = event.get("properties") if isinstance(event.get("properties"), dict) else {}
        if event.get("event") != "$groupidentify":
            self.stats["ignored"] += 1
            return False
        group_type, key = props.get("$group_type"), props.get("$group_key")
        group_set = props.get("$group_set") or {}
        if not group_type or key in (None, "") or not isinstance(group_set, dict):
            self.stats["ignored"] += 1
            return False
        index = self._type_index(team, str(group_type))
        if index is None:  # a sixth type is silently ignored (`group-type-manager.ts`)
            self.stats["ignored"] += 1
            return False
        key = str(key)
        group = get_group(self.state, team, index, key)
        if group is None:
            new_group(self.state, team, index, key, group_set, self.state.now())
        else:  # shallow merge: incoming keys overwrite, others are kept
            group["group_properties"].update(group_set)
        return True

    def _type_index(self, team: int, name: str) -> int | None:
        """The type's index, a new type taking the lowest free one of 0-4."""
        types = self.state.data["group_types"].setdefault(str(team), {})
        for index, existing in types.items():
            if existing == name:
                return int(index)
        free = [i for i in range(MAX_GROUP_TYPES) if str(i) not in types]
        if not free:
            return None
        types[str(free[0])] = name
        return free[0]
