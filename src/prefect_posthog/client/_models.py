"""Typed request and response models for the PostHog slice.

They follow what PostHog's server returns, not the published OpenAPI where the two disagree:
sharing GET returns one object (`posthog/api/sharing.py`), password creation returns the
plaintext once, and project secret API key values are only present in create and roll
responses (`posthog/api/project_secret_api_key.py`).

Secret values (`ProjectSecretAPIKey.value`, `SharePasswordCreated.password`) are `SecretStr`
so they print as ``**********`` in logs, reprs and Prefect's parameter serialisation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

SharingResource = Literal["insight", "session_recording", "dashboard"]
"""The kinds of object whose sharing configuration the slice manages."""

SHARING_PATH_SEGMENT: dict[str, str] = {
    "insight": "insights",
    "session_recording": "session_recordings",
    "dashboard": "dashboards",
}


class _Model(BaseModel):
    # PostHog adds fields over time; keep them rather than failing on them. Validation
    # errors never quote the input: a response can carry a key value or a password.
    model_config = ConfigDict(extra="allow", populate_by_name=True, hide_input_in_errors=True)


class Project(_Model):
    """A project (team): its id, name and public capture token."""

    id: int
    name: str | None = None
    api_token: str | None = Field(default=None, description="The phc_ capture token.")


class GroupType(_Model):
    """A group type of the project (``groups_types/``)."""

    group_type: str = Field(description="The type's name, e.g. company.")
    group_type_index: int = Field(description="Its index, 0 to 4.")
    name_singular: str | None = None
    name_plural: str | None = None


class Group(_Model):
    """A group (company, organization, ...) and its properties."""

    group_type_index: int = Field(description="Group type index, 0 to 4.")
    group_key: str = Field(description="The group's key, unique within its type.")
    group_properties: dict[str, Any] = Field(default_factory=dict, description="Properties.")
    created_at: datetime | None = Field(default=None, description="When the group was created.")
    notebook: str | None = Field(default=None, description="CRM notebook short id (find only).")


class GroupsPage(_Model):
    """One page of `list_groups` (keyset cursor, forward only, no count)."""

    results: list[Group]
    next: str | None = None
    previous: str | None = None


class ActivityLogEntry(_Model):
    """One activity log entry of a group."""

    id: str
    activity: str
    scope: str | None = None
    item_id: str | None = None
    user: dict[str, Any] | None = None
    detail: dict[str, Any] | None = None
    created_at: datetime | None = None


class ActivityPage(_Model):
    """One page of a group's activity (page/limit pagination)."""

    results: list[ActivityLogEntry]
    next: str | None = None
    previous: str | None = None
    total_count: int | None = None


class RelatedActor(_Model):
    """A person or group that shares events with the queried actor."""

    type: str
    id: str | int
    group_key: str | None = None
    group_type_index: int | None = None
    properties: dict[str, Any] | None = None


class PropertyCount(_Model):
    """A property name (definitions) or value (values) and how many groups have it."""

    name: Any
    count: int


class SharePassword(_Model):
    """An active share password (the plaintext is never returned after creation)."""

    id: int
    created_at: datetime | None = None
    note: str | None = None
    created_by_email: str | None = None
    is_active: bool = True


class SharePasswordCreated(_Model):
    """The 201 response of password creation: the only time the plaintext is visible."""

    id: int
    password: SecretStr
    note: str | None = None
    created_at: datetime | None = None
    created_by_email: str | None = None


class SharingConfiguration(_Model):
    """The sharing configuration of an insight, session recording or dashboard."""

    created_at: datetime | None = None
    enabled: bool = False
    access_token: str | None = None
    settings: dict[str, Any] | None = None
    password_required: bool = False
    share_passwords: list[SharePassword] = Field(default_factory=list)
    user_access_level: str | None = Field(
        default=None, description="The caller's access to the shared object (newer PostHog).")


class ProjectSecretAPIKey(_Model):
    """A project secret API key (``phs_...``).

    ``value`` is set only in the responses of create and roll, as a `SecretStr`.
    """

    id: str
    label: str
    value: SecretStr | None = None
    mask_value: str | None = None
    created_at: datetime | None = None
    created_by: Any = None
    last_used_at: datetime | None = None
    last_rolled_at: datetime | None = None
    scopes: list[str] = Field(default_factory=list)


class ProjectSecretAPIKeysPage(_Model):
    """One page of project secret API keys (limit/offset pagination)."""

    count: int | None = None
    next: str | None = None
    previous: str | None = None
    results: list[ProjectSecretAPIKey]
