"""The bulk job's typed parameters and report: one row of input, one item outcome, the
report with its counters, and the statuses and write paths as enums."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ItemStatus(StrEnum):
    """How an input row ended."""

    APPLIED = "applied"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"
    PLANNED = "planned"


PROBLEMS = (ItemStatus.FAILED, ItemStatus.SKIPPED)


class ItemPath(StrEnum):
    """Which write path an item took."""

    API = "api"
    CAPTURE = "capture"
    API_AFTER_CAPTURE = "api-after-capture"


WritePath = Literal["auto", "api", "capture"]


class Route(StrEnum):
    """Where planning sends a group on the capture path (stored in the run's store)."""

    SKIPPED = "skipped"  # missing, and create_missing is off
    UNCHANGED = "unchanged"  # holds every wanted value already
    FAILED = "failed"  # no write path can do what it asks
    CAPTURE = "capture"  # sent as a $groupidentify event, then read back
    API = "api"  # written through the management API (the note says why)
    RESEND = "resend"  # capture refused its request: written through the management API


class GroupPropertyUpdate(BaseModel):
    """The desired properties of one group: what to set, to null and to remove."""

    model_config = ConfigDict(extra="forbid")

    group_type_index: int = Field(ge=0, le=4, description="Group type index (0-4).")
    group_key: str = Field(min_length=1, max_length=400, description="The group's key.")
    set: dict[str, Any] = Field(default_factory=dict,
                                description="Properties to set (values must not be null).")
    unset: list[str] = Field(default_factory=list, description="Property names to remove.")
    set_null: list[str] = Field(
        default_factory=list,
        description="Property names to set to an explicit JSON null (written through "
                    "capture: PostHog's management API refuses null values).")

    @model_validator(mode="after")
    def _check(self) -> GroupPropertyUpdate:
        # Runs for every input row: the common case (a few scalar values, nothing to
        # remove) takes one pass over `set`.
        if not self.group_key.strip():
            raise ValueError("group_key is blank")
        for name, value in self.set.items():
            if not name:
                raise ValueError("property names must not be empty")
            if value is None:
                raise ValueError(f"set.{name} is null; PostHog rejects null values, list the "
                                 "name in unset to remove the property or in set_null to "
                                 "store a null")
            if type(value) not in _PLAIN and not _finite(value):
                raise ValueError(f"set.{name} holds NaN or infinity, which JSON (and PostHog) "
                                 "cannot store")
        if self.unset or self.set_null:
            self._check_names()
        return self

    def _check_names(self) -> None:
        for first, second in (("set", "unset"), ("set", "set_null"), ("unset", "set_null")):
            both = set(getattr(self, first)) & set(getattr(self, second))
            if both:
                raise ValueError(f"property {sorted(both)[0]!r} is both in {first} and "
                                 f"{second}")
        if any(not k for k in [*self.unset, *self.set_null]):
            raise ValueError("property names must not be empty")


_PLAIN = (str, int, bool)  # values that are always finite


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


class Row(BaseModel):
    """One input row with its 1-based position (and, once planned, why it took its path)."""

    row: int
    update: GroupPropertyUpdate
    note: str | None = None


class ItemOutcome(BaseModel):
    """What happened to one input row."""

    row: int = Field(description="1-based position in the input.")
    group_type_index: int
    group_key: str
    status: ItemStatus
    changes: list[str] = Field(
        default_factory=list,
        description='Each change as `name: old → new` (values as JSON, cut at 40 characters; '
                    '`(none)` when absent, `(removed)` for an unset), and `(new group)`.')
    reason: str | None = None
    write_path: ItemPath | None = Field(
        None, description="api, capture, or api-after-capture (not visible in time).")


class BulkUpdateReport(BaseModel):
    """Outcome of a bulk group property update."""

    dry_run: bool
    total: int = 0
    applied: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    planned: int = 0
    reads: int = Field(0, description="Read calls made to plan and verify.")
    writes: int = Field(0, description="Management API write calls made.")
    events: int = Field(0, description="$groupidentify events sent through capture.")
    items: list[ItemOutcome] = Field(
        default_factory=list,
        description="Item outcomes: every item, or failed and skipped first up to "
                    "max_report_items.")
    items_truncated: bool = False
    report_path: str | None = None
    write_path: str = Field("api", description="The path chosen: api or capture.")
    timings: dict[str, float] = Field(
        default_factory=dict,
        description="Seconds spent reading the input, planning, sending, verifying and "
                    "writing through the management API.")

    def count(self, outcome: ItemOutcome) -> None:
        self.total += 1
        setattr(self, outcome.status, getattr(self, outcome.status) + 1)
