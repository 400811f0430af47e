"""Typed parameters and reports of the flows (they render as forms in the Prefect UI)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from prefect_posthog.client.models import SharingResource

ItemStatus = Literal["applied", "unchanged", "skipped", "failed", "planned"]


class GroupPropertyUpdate(BaseModel):
    """The desired properties of one group: what to set and what to remove."""

    model_config = ConfigDict(extra="forbid")

    group_type_index: int = Field(ge=0, le=4, description="Group type index (0-4).")
    group_key: str = Field(min_length=1, max_length=400, description="The group's key.")
    set: dict[str, Any] = Field(default_factory=dict,
                                description="Properties to set (values must not be null).")
    unset: list[str] = Field(default_factory=list, description="Property names to remove.")

    @model_validator(mode="after")
    def _check(self) -> GroupPropertyUpdate:
        nulls = [k for k, v in self.set.items() if v is None]
        if nulls:
            raise ValueError(f"set.{nulls[0]} is null; PostHog rejects null values, list the "
                             "name in unset to remove the property")
        both = set(self.set) & set(self.unset)
        if both:
            raise ValueError(f"property {sorted(both)[0]!r} is both in set and unset")
        if any(not k for k in [*self.set, *self.unset]):
            raise ValueError("property names must not be empty")
        return self


class ItemOutcome(BaseModel):
    """What happened to one input row."""

    row: int = Field(description="1-based position in the input.")
    group_type_index: int
    group_key: str
    status: ItemStatus
    changes: list[str] = Field(default_factory=list,
                               description="Properties written (+name) or removed (-name).")
    reason: str | None = None


class BulkUpdateReport(BaseModel):
    """Outcome of a bulk group property update."""

    dry_run: bool
    total: int = 0
    applied: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    planned: int = 0
    reads: int = Field(0, description="Read calls made to plan.")
    writes: int = Field(0, description="Write calls made (one per changed property).")
    items: list[ItemOutcome] = Field(
        default_factory=list,
        description="Item outcomes: every item, or failed and skipped first up to "
                    "max_report_items.")
    items_truncated: bool = False
    report_path: str | None = None

    def count(self, outcome: ItemOutcome) -> None:
        self.total += 1
        setattr(self, outcome.status, getattr(self, outcome.status) + 1)


_BLOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def block_name(template: str, **values: Any) -> str:
    """Fill a Secret block name template with slugified values (Prefect allows only
    lowercase letters, digits and dashes)."""
    slugs = {k: re.sub(r"[^a-z0-9]+", "-", str(v).lower()).strip("-") for k, v in values.items()}
    try:
        name = template.format(**slugs)
    except (KeyError, IndexError) as exc:
        raise ValueError(f"secret_block_name_template {template!r} uses an unknown field "
                         f"{exc}; available: {', '.join(sorted(values))}") from None
    if not _BLOCK_NAME.match(name):
        raise ValueError(f"secret block name {name!r} from the template is not a valid block "
                         "name (lowercase letters, digits and dashes)")
    return name


class KeySelector(BaseModel):
    """Which project secret API keys to rotate; a key matching any criterion is selected."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(default_factory=list, description="Key ids.")
    labels: list[str] = Field(default_factory=list, description="Exact labels.")
    label_pattern: str | None = Field(
        None, description="Shell-style label pattern, e.g. 'flags-*'.")
    older_than_days: float | None = Field(
        None, gt=0, description="Keys last rolled (or created) more than N days ago.")
    all_keys: bool = Field(False, description="Every key of the project.")

    @model_validator(mode="after")
    def _check(self) -> KeySelector:
        if not (self.ids or self.labels or self.label_pattern or self.older_than_days
                or self.all_keys):
            raise ValueError("selector is empty: give ids, labels, label_pattern, "
                             "older_than_days or all_keys=true")
        return self


class KeyRotationOutcome(BaseModel):
    """What happened to one key (never its value)."""

    id: str
    label: str
    status: Literal["rotated", "planned", "failed"]
    mask_value: str | None = None
    rolled_at: datetime | None = None
    stored_in: str | None = None
    new_value_works: bool | None = None
    old_value_revoked: bool | None = None
    reconciled: bool = Field(False, description="A lost roll response was reconciled.")
    reason: str | None = None


class RotationReport(BaseModel):
    """Outcome of a key rotation run."""

    dry_run: bool
    outcomes: list[KeyRotationOutcome] = Field(default_factory=list)
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


class PasswordResetOutcome(BaseModel):
    """What happened to one shared object (never the password)."""

    resource: SharingResource
    id: str
    status: Literal["reset", "planned", "failed"]
    share_url: str | None = None
    password_id: int | None = None
    removed_passwords: int = 0
    link_refreshed: bool = False
    stored_in: str | None = None
    reconciled: bool = False
    reason: str | None = None


class PasswordResetReport(BaseModel):
    """Outcome of a sharing-password reset run."""

    dry_run: bool
    targets: list[PasswordResetOutcome] = Field(default_factory=list)
    notified: bool = False
    notification_error: str | None = None
