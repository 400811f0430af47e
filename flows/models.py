"""Typed parameters and reports of the flows (they render as forms in the Prefect UI)."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from prefect_posthog.client import InvalidInputError, SharingResource

# The bulk job's models live in their own module; re-exported here for existing imports.
from prefect_posthog.flows.bulk_models import (  # noqa: F401
    BulkUpdateReport,
    GroupPropertyUpdate,
    ItemOutcome,
    ItemStatus,
)

_BLOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def block_name(template: str, **values: Any) -> str:
    """Fill a Secret block name template with slugified values (Prefect allows only
    lowercase letters, digits and dashes).

    Raises:
        InvalidInputError: The template names an unknown field or yields a name Prefect
            would reject.
    """
    slugs = {k: re.sub(r"[^a-z0-9]+", "-", str(v).lower()).strip("-") for k, v in values.items()}
    try:
        name = template.format(**slugs)
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidInputError("secret_block_name_template", f"{template!r} uses an unknown "
                                f"field {exc}; available: "
                                + ", ".join("{" + k + "}" for k in sorted(values))) from None
    if not _BLOCK_NAME.match(name) or name.endswith("-"):
        raise InvalidInputError("secret_block_name_template", f"gives {name!r}, which is not "
                                "a valid Prefect block name (lowercase letters, digits and "
                                "dashes, starting with a letter or digit and not ending in a "
                                "dash); add {id} to the template")
    return name


class KeySelector(BaseModel):
    """Which project secret API keys to rotate.

    Criteria narrow: a key is selected only when it meets **every** criterion given; the
    values inside one list are alternatives. `labels=["a", "b"], older_than_days=30`
    selects the keys labelled a or b that are older than 30 days. Ids and labels that name
    no key of the project are an error, before anything is rolled.
    """

    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(
        default_factory=list,
        description="Only these key ids (any of them). Every id must exist in the project.")
    labels: list[str] = Field(
        default_factory=list,
        description="Only keys with one of these exact labels. Every label must exist.")
    label_pattern: str | None = Field(
        None, description="Only keys whose label matches this shell-style pattern, e.g. "
        "`flags-*`.")
    older_than_days: float | None = Field(
        None, gt=0, description="Only keys last rolled (or, never rolled, created) more than "
        "this many days ago.")
    all_keys: bool = Field(
        False, description="Every key of the project; cannot be combined with the other "
        "criteria.")

    @model_validator(mode="after")
    def _check(self) -> KeySelector:
        narrowing = bool(self.ids or self.labels or self.label_pattern
                         or self.older_than_days is not None)
        if not narrowing and not self.all_keys:
            raise ValueError("selector is empty: give ids, labels, label_pattern, "
                             "older_than_days or all_keys=true")
        if narrowing and self.all_keys:
            raise ValueError("all_keys cannot be combined with ids, labels, label_pattern or "
                             "older_than_days: criteria narrow the selection")
        return self


Strategy = Literal["roll", "overlap"]
"""How a key is replaced: `roll` gives it a new value at once (the old one dies: right for
a leak); `overlap` creates a successor key, stores it, and retires the old key on a later
run once consumers have moved."""


class KeyStatus(StrEnum):
    """How one key ended a rotation run. Only `failed` and `overdue` fail the run."""

    PLANNED = "planned"
    """Dry run: what would be done (`action`)."""
    ROTATED = "rotated"
    """A new value is stored and passed the final check: rolled (`roll`), or a successor
    key created (`overlap`: the old key keeps working until consumers moved)."""
    REPAIRED = "repaired"
    """The stored value was not the live one (rolled elsewhere, or a run stopped between
    a write and its store): replaced, stored and checked like a rotation."""
    OVERLAPPING = "overlapping"
    """An overlap in progress, not yet safe to retire; nothing needed doing."""
    RETIRED = "retired"
    """The overlap's old key was deleted and the successor took its label; the stored
    value passed the final check."""
    OVERDUE = "overdue"
    """Past `retire_deadline_hours` and still not safe to retire: consumers still use the
    old key (or none uses the successor). Nothing was deleted."""
    FAILED = "failed"
    """See `reason`; the stored value may not be live: run again."""


class KeyAction(StrEnum):
    """What a run does to one key (chosen before any write)."""

    ROLL = "roll"
    REPAIR = "repair"
    START_OVERLAP = "start_overlap"
    STORE_SUCCESSOR = "store_successor"
    WAIT = "wait"
    RETIRE = "retire"
    END_OVERLAP = "end_overlap"


class FinalCheck(StrEnum):
    """The final check of a written key: `changed` means its live value moved on after it
    was stored (a late write, another actor), so the run writes it again and checks again."""

    PASSED = "passed"
    CHANGED = "changed"
    FAILED = "failed"


class KeyRotationOutcome(BaseModel):
    """What happened to one key (never its value).

    `rotated`, `repaired` and `retired` mean the final check passed: after any late write
    could have landed, the key's live value (its mask and store time) is the one the job
    stored, the Secret block holds it and, where PostHog can check it, it authenticates.
    In an overlap, `id` is the successor's (the key consumers now read) and `old_key_id`
    the key it replaces; `label` is always the label consumers know.
    """

    id: str
    label: str
    status: KeyStatus
    action: KeyAction | None = None
    strategy: Strategy = "roll"
    old_key_id: str | None = Field(None, description="Overlap: the key being retired.")
    mask_value: str | None = None
    rolled_at: datetime | None = Field(None, description="When the stored value was made "
                                       "(the roll, or the successor's creation).")
    stored_in: str | None = None
    new_value_works: bool | None = None
    old_value_revoked: bool | None = None
    verification: str | None = Field(
        None, description="What the final check established about the stored value.")
    detail: str | None = Field(None, description="Overlap progress and what happens next.")
    rolls: int = Field(0, description="Roll (and create) calls made for this key.")
    reconciled: bool = Field(False, description="A write's outcome was unknown and was "
                             "reconciled.")
    final_check: FinalCheck | None = None
    reason: str | None = None


class RotationReport(BaseModel):
    """Outcome of a key rotation run."""

    dry_run: bool
    strategy: Strategy = "roll"
    outcomes: list[KeyRotationOutcome] = Field(default_factory=list)
    notified: bool = False
    notification_error: str | None = None


class KeyState(StrEnum):
    """What a key's Secret block holds, compared with the live key."""

    IN_SYNC = "in_sync"
    """The block holds the live value (and it authenticates, where checked)."""
    ROLLED_ELSEWHERE = "rolled_elsewhere"
    """The block's value is not the live one: the key was rolled by someone else (an
    admin, PostHog's leak scanning) or a run stopped between a roll and its store.
    Consumers reading the block are cut off."""
    STORED_VALUE_DEAD = "stored_value_dead"
    """The block's value matches the live mask but PostHog refuses it."""
    IN_OVERLAP = "in_overlap"
    """An overlap rotation is under way (see the detail for the consumers' progress)."""
    NO_STORAGE = "no_storage"
    """No Secret block for this key (yet): nothing to compare."""


DRIFT = frozenset({KeyState.ROLLED_ELSEWHERE, KeyState.STORED_VALUE_DEAD})


class KeyAudit(BaseModel):
    """One key as the audit found it (never its value)."""

    id: str
    label: str
    state: KeyState
    detail: str | None = None
    stored_in: str | None = None
    live_mask: str | None = None
    stored_mask: str | None = None
    last_used_at: datetime | None = None
    repair: KeyStatus | None = Field(None, description="With repair on: how the repair "
                                     "ended (repaired or failed).")
    reason: str | None = None


class AuditReport(BaseModel):
    """Outcome of an audit run."""

    audits: list[KeyAudit] = Field(default_factory=list)
    repaired: list[KeyRotationOutcome] = Field(default_factory=list)
    notified: bool = False
    notification_error: str | None = None


class SharingTarget(BaseModel):
    """An insight, session recording or dashboard whose share password to reset."""

    model_config = ConfigDict(extra="forbid")

    resource: SharingResource = Field(description="insight, session_recording or dashboard.")
    id: str = Field(min_length=1, description="Insight/dashboard id or recording session id.")

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("id"), int):
            data = {**data, "id": str(data["id"])}
        return data

    @model_validator(mode="after")
    def _check(self) -> SharingTarget:
        if self.resource != "session_recording" and not self.id.isdigit():
            raise ValueError(f"id {self.id!r} of a {self.resource} must be an integer")
        return self


class ResetStatus(StrEnum):
    """How one share ended a reset run."""

    PLANNED = "planned"
    RESET = "reset"
    """The final check passed: protection on, the only active password is the stored one,
    the Secret block still holds it, `share_url` is the live link."""
    FAILED = "failed"


class StoredPassword(StrEnum):
    """After a failure: what the Secret block holds, as people must know it."""

    WORKS = "the stored password is the working one"
    ROLLED_BACK = "rolled back: the share and the stored password are as before"
    ROLLBACK_INCOMPLETE = "rollback incomplete (see reason)"
    UNCHANGED = "unchanged: nothing was changed"
    NOT_WORKING = "the stored password is not the working one"


class PasswordResetOutcome(BaseModel):
    """What happened to one shared object (never the password).

    `reset` means the final check passed: after any late write could have landed, the
    share requires a password, the only active password is the one stored, and
    `share_url` is the live link.
    """

    resource: SharingResource
    id: str
    status: ResetStatus
    share_url: str | None = None
    password_id: int | None = None
    removed_passwords: int = 0
    link_refreshed: bool = False
    stored_in: str | None = None
    stored_secret: StoredPassword | None = Field(
        None, description="After a failure: whether the stored password is the working one "
        "or the change was rolled back.")
    note: str | None = Field(None, description="The note marking this run's password.")
    reconciled: bool = False
    reason: str | None = None


class PasswordResetReport(BaseModel):
    """Outcome of a sharing-password reset run."""

    dry_run: bool
    targets: list[PasswordResetOutcome] = Field(default_factory=list)
    notified: bool = False
    notification_error: str | None = None
