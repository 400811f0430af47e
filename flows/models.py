"""Typed parameters and reports of the flows (they render as forms in the Prefect UI)."""

from __future__ import annotations

import re
from datetime import datetime
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


class KeyRotationOutcome(BaseModel):
    """What happened to one key (never its value).

    `rotated` means the final check passed: after any late write could have landed, the
    key's live value (its mask and `last_rolled_at`) is the one the job stored.
    """

    id: str
    label: str
    status: Literal["rotated", "planned", "failed"]
    mask_value: str | None = None
    rolled_at: datetime | None = None
    stored_in: str | None = None
    new_value_works: bool | None = None
    old_value_revoked: bool | None = None
    verification: str | None = Field(
        None, description="What the final check established about the stored value.")
    rolls: int = Field(0, description="Roll calls made for this key.")
    reconciled: bool = Field(False, description="A roll's outcome was unknown and was "
                             "reconciled.")
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
    """What happened to one shared object (never the password).

    `reset` means the final check passed: after any late write could have landed, the
    share requires a password, the only active password is the one stored, and
    `share_url` is the live link.
    """

    resource: SharingResource
    id: str
    status: Literal["reset", "planned", "failed"]
    share_url: str | None = None
    password_id: int | None = None
    removed_passwords: int = 0
    link_refreshed: bool = False
    stored_in: str | None = None
    stored_secret: str | None = Field(
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
