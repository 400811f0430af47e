"""Fault plans: seeded random faults plus faults scheduled for given operations.

One validated type serves both the HTTP faults of the API (``POST /_emulator/faults``) and
the ingestion faults of the capture pipeline (``POST /_emulator/ingestion``); each use names
the catalogue of kinds it understands.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from prefect_posthog.emulator.asgi import DropConnection
from prefect_posthog.emulator.common import ApiError, std_error

# late: the request is held for late_seconds and then applied; set it above the client's
# timeout and the client gives up on a write that lands afterwards.
# stall: the request is applied (and logged) at once, then its answer is held for
# stall_seconds: a test can kill the client after a write landed and before it learnt so.
FAULT_KINDS = ("500", "502", "503", "429", "reset", "slow", "lost_response", "capture", "late",
               "stall")
# dropped: accepted by capture, never applied; delayed: applied delay_seconds late.
INGESTION_FAULT_KINDS = ("dropped", "delayed")
# PostHog's `ee/clickhouse/views/groups.py` emits an event only from the property writes.
_ONLY_FOR = {"capture": ("update_group_property", "delete_group_property")}


@dataclass
class FaultPlan:
    """Which faults to inject, and when.

    Attributes:
        kinds: Kinds drawn at random, with probability ``rate`` per request.
        rate: Probability of a random fault, 0 to 1.
        seed: Seed of the random draws.
        slow_seconds: How long a ``slow`` request is held before it is served.
        late_seconds: How long a ``late`` request is held before it is applied.
        stall_seconds: How long the answer to a ``stall`` request (applied at once) is
            held.
        delay_seconds: How much later a ``delayed`` capture request is applied.
        burst: How many 429s in a row a random ``429`` starts.
        operations: Restrict random faults to these operations (empty: all).
        schedule: ``{"operation" ("*" = any), "fault", "count"}`` entries, served first.
        catalogue: The kinds this plan may use.
    """

    kinds: tuple[str, ...] = ()
    rate: float = 0.0
    seed: int = 0
    slow_seconds: float = 2.0
    late_seconds: float = 3.0
    stall_seconds: float = 60.0
    delay_seconds: float = 30.0
    burst: int = 3
    operations: tuple[str, ...] = ()
    schedule: list[dict] = field(default_factory=list)
    catalogue: tuple[str, ...] = FAULT_KINDS
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _burst_left: int = 0

    def __post_init__(self) -> None:
        self.kinds = tuple(self.kinds)
        self.operations = tuple(self.operations)
        self.schedule = [{"operation": str(entry.get("operation", "*")),
                          "fault": entry["fault"], "count": int(entry.get("count", 1))}
                         for entry in self.schedule]
        bad = [k for k in (*self.kinds, *(e["fault"] for e in self.schedule))
               if k not in self.catalogue]
        if bad:
            raise ValueError(f"unknown fault kind(s) {bad}; choose from "
                             + ", ".join(self.catalogue))
        if not 0 <= self.rate <= 1:
            raise ValueError("fault rate must be between 0 and 1")
        self._rng = random.Random(self.seed)

    @classmethod
    def from_spec(cls, spec: dict[str, Any],
                  catalogue: tuple[str, ...] = FAULT_KINDS) -> FaultPlan:
        """A plan from an admin body; 400 naming the problem when it is not one."""
        names = ("kinds", "rate", "seed", "slow_seconds", "late_seconds", "stall_seconds",
                 "delay_seconds", "burst", "operations", "schedule")
        unknown = sorted(set(spec) - set(names) - {"flush"})
        if unknown:
            raise ApiError(400, {"error": f"unknown fault setting(s) {unknown}; "
                                          f"known: {', '.join(names)}"})
        try:
            return cls(**{k: spec[k] for k in names if k in spec}, catalogue=catalogue)
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiError(400, {"error": f"bad fault plan: {exc}"}) from None

    def pick(self, operation: str = "*") -> str | None:
        """The fault for one request of ``operation``, or ``None``."""
        for entry in self.schedule:
            if entry["operation"] in (operation, "*") and entry["count"] > 0:
                entry["count"] -= 1
                return entry["fault"]
        if self._burst_left > 0:
            self._burst_left -= 1
            return "429"
        if not self.kinds or (self.operations and operation not in self.operations):
            return None
        if self._rng.random() >= self.rate:
            return None
        kind = self._rng.choice(self.kinds)
        if operation not in _ONLY_FOR.get(kind, (operation,)):
            return None
        if kind == "429":
            self._burst_left = self.burst - 1
        return kind


Faults = FaultPlan  # the public name the CLI, tests and README use


async def apply_before(plan: FaultPlan, fault: str | None) -> None:
    """What a fault does before the request is served: refuse it, drop it, or hold it."""
    if fault == "reset":
        raise DropConnection()
    if fault in ("500", "502", "503"):
        raise std_error(int(fault), "server_error", "error", "A server error occurred.")
    if fault == "429":
        raise std_error(429, "throttled_error", "throttled",
                        "Request was throttled. Expected available in 1 second.")
    if fault in ("slow", "late"):
        await asyncio.sleep(plan.slow_seconds if fault == "slow" else plan.late_seconds)


async def hold_after(plan: FaultPlan, fault: str | None) -> None:
    """What a fault does once the request was applied and logged: ``stall`` holds the
    answer (the client is still waiting when the write has landed)."""
    if fault == "stall":
        await asyncio.sleep(plan.stall_seconds)


def apply_after(fault: str | None, answer: tuple) -> tuple:
    """What a fault does to an answer: ``capture`` fails after the write happened, as
    `ee/clickhouse/views/groups.py` answers when emitting the event fails."""
    if fault == "capture":
        return 502, {"code": "Failed to submit group property update event.",
                     "detail": "capture_http_error", "type": "capture_http_error"}
    return answer
