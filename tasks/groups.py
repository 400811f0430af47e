"""Tasks for PostHog groups (`/api/projects/{id}/groups/...`).

Scopes: reads need `group:read`; `update_group_property`, `delete_group_property` and
`create_group` need `group:write`; `get_group_activity` needs `activity_log:read`.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import ActivityPage, Group, GroupType, PropertyCount, RelatedActor
from prefect_posthog.tasks._common import api_task, client_for


@api_task("List PostHog group types", idempotent=True)
def list_group_types(
    credentials: PostHogCredentials, project_id: int | str | None = None
) -> list[GroupType]:
    """The project's group types: each index (0-4) with its name (e.g. `company`).

    Calls `GET groups_types/`. Scope `group:read`. A wrong project answers 404
    (`ProjectNotFoundError`), so this cheap read also proves the project.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import list_group_types

        @flow
        def group_type_names() -> dict[int, str]:
            types = list_group_types(PostHogCredentials.load("my-posthog"))
            return {t.group_type_index: t.group_type for t in types}

        print(group_type_names())
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.list_group_types()


@api_task("List PostHog groups", idempotent=True, run_name="list_groups-{group_type_index}")
def list_groups(
    credentials: PostHogCredentials,
    group_type_index: int,
    search: str | None = None,
    group_key: str | None = None,
    limit: int | None = 1000,
    project_id: int | str | None = None,
) -> list[Group]:
    """List groups of one type, newest first, following PostHog's keyset cursor.

    Calls `GET groups/` (100 per page) until `limit` groups or the end. Scope
    `group:read`.

    Args:
        credentials: PostHog credentials block.
        group_type_index: Group type index (0-4).
        search: Case-insensitive substring of the properties, or an exact key.
        group_key: Case-insensitive substring of the group key.
        limit: Most groups to return; `None` for all.
        project_id: Override the block's project.

    Returns:
        The groups.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import list_groups

        @flow
        def companies() -> list[str]:
            credentials = PostHogCredentials.load("my-posthog")
            return [g.group_key for g in list_groups(credentials, group_type_index=0, limit=50)]

        print(companies())
        ```
    """
    with client_for(credentials, project_id) as posthog:
        groups = posthog.iter_groups(group_type_index, search=search, group_key=group_key)
        return list(islice(groups, limit) if limit is not None else groups)


@api_task("Create PostHog group", idempotent=False, run_name="create_group-{group_key}")
def create_group(
    credentials: PostHogCredentials,
    group_type_index: int,
    group_key: str,
    group_properties: dict[str, Any] | None = None,
    project_id: int | str | None = None,
) -> Group:
    """Create a group (`POST groups/`). Scope `group:write`.

    Not retried: a repeat would fail with "A group with this key already exists"; a lost
    response raises `OutcomeUnknownError` (check with `find_group`).

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import create_group

        @flow
        def onboard(key: str) -> dict:
            credentials = PostHogCredentials.load("my-posthog")
            return create_group(credentials, 0, key, {"plan": "trial"}).group_properties

        print(onboard("company-new"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.create_group(group_type_index, group_key, group_properties)


@api_task("Find PostHog group", idempotent=True, run_name="find_group-{group_key}")
def find_group(
    credentials: PostHogCredentials,
    group_type_index: int,
    group_key: str,
    project_id: int | str | None = None,
) -> Group:
    """Read one group (`GET groups/find`). Scope `group:read`.

    Sends `skip_create_notebook=true` so the read never creates a CRM notebook as a side
    effect (PostHog does that lazily otherwise).

    Raises:
        NotFoundError: No such group (of that type).

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import find_group

        @flow
        def plan_of(key: str) -> str:
            group = find_group(PostHogCredentials.load("my-posthog"), 0, key)
            return group.group_properties.get("plan")

        print(plan_of("company-00000"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.find_group(group_type_index, group_key)


@api_task("Get PostHog group activity", idempotent=True,
          run_name="get_group_activity-{group_key}")
def get_group_activity(
    credentials: PostHogCredentials,
    group_type_index: int,
    group_key: str,
    page: int = 1,
    limit: int = 10,
    project_id: int | str | None = None,
) -> ActivityPage:
    """One page of a group's activity log (`GET groups/activity`).

    Scope `activity_log:read` (not `group:read`).

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import get_group_activity

        @flow
        def audit(key: str) -> list[str]:
            page = get_group_activity(PostHogCredentials.load("my-posthog"), 0, key, limit=50)
            return [f"{entry.created_at:%Y-%m-%d} {entry.activity}" for entry in page.results]

        print(audit("company-00000"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.get_group_activity(group_type_index, group_key, page=page, limit=limit)


@api_task("List related PostHog groups", idempotent=True, run_name="list_related_groups-{id}")
def list_related_groups(
    credentials: PostHogCredentials,
    id: str,
    group_type_index: int | None = None,
    project_id: int | str | None = None,
) -> list[RelatedActor]:
    """Persons and groups sharing events with an actor in the last 90 days.

    Calls `GET groups/related`. With `group_type_index`, `id` is a group key of that
    type; without it, a person UUID. Scope `group:read`.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import list_related_groups

        @flow
        def related(key: str) -> list[str]:
            actors = list_related_groups(PostHogCredentials.load("my-posthog"), key, 0)
            return [actor.group_key or str(actor.id) for actor in actors]

        print(related("company-00000"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.list_related_groups(id, group_type_index)


@api_task("List PostHog group property definitions", idempotent=True)
def list_group_property_definitions(
    credentials: PostHogCredentials,
    project_id: int | str | None = None,
) -> dict[int, list[PropertyCount]]:
    """Property names per group type with how many groups have each.

    Calls `GET groups/property_definitions`. Scope `group:read`. Newer PostHog
    releases removed this route: then a `NotFoundError` says so (use
    `list_group_property_values` instead).

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import list_group_property_definitions

        @flow
        def schema() -> dict[int, list[str]]:
            definitions = list_group_property_definitions(PostHogCredentials.load("my-posthog"))
            return {index: [p.name for p in names] for index, names in definitions.items()}

        print(schema())
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.list_group_property_definitions()


@api_task("List PostHog group property values", idempotent=True,
          run_name="list_group_property_values-{key}")
def list_group_property_values(
    credentials: PostHogCredentials,
    group_type_index: int,
    key: str,
    value: str | None = None,
    project_id: int | str | None = None,
) -> list[PropertyCount]:
    """The most common values of a group property, with counts.

    Calls `GET groups/property_values`. PostHog returns **at most 20** values, ordered by
    count (then value); `value` filters by case-insensitive substring. Values come back
    as strings. Scope `group:read`.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import list_group_property_values

        @flow
        def plans() -> dict[str, int]:
            values = list_group_property_values(PostHogCredentials.load("my-posthog"), 0, "plan")
            return {v.name: v.count for v in values}

        print(plans())
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.list_group_property_values(group_type_index, key, value)


@api_task("Update PostHog group property", idempotent=True,
          run_name="update_group_property-{group_key}-{key}")
def update_group_property(
    credentials: PostHogCredentials,
    group_type_index: int,
    group_key: str,
    key: str,
    value: Any,
    project_id: int | str | None = None,
) -> Group:
    """Set one property of a group, keeping the others.

    Calls `POST groups/update_property?group_type_index=&group_key=` with body
    `{"key": key, "value": value}` (the shape PostHog's server reads). `value` must not
    be null: use `delete_group_property`. Idempotent in state, so it is retried. Scope
    `group:write`. For many groups use the bulk flow, which writes only what changed.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import update_group_property

        @flow
        def upgrade(key: str) -> dict:
            credentials = PostHogCredentials.load("my-posthog")
            return update_group_property(credentials, 0, key, "plan", "pro").group_properties

        print(upgrade("company-00000"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.update_group_property(group_type_index, group_key, key, value)


@api_task("Delete PostHog group property", idempotent=False,
          run_name="delete_group_property-{group_key}-{key}")
def delete_group_property(
    credentials: PostHogCredentials,
    group_type_index: int,
    group_key: str,
    key: str,
    project_id: int | str | None = None,
) -> Group:
    """Remove one property from a group.

    Calls `POST groups/delete_property` with `{"$unset": key}`. PostHog answers 400
    when the property is absent, so the call is not repeated blindly: after a failure that
    may have applied it, the client checks and treats "does not exist" as done. Scope
    `group:write`.

    Raises:
        ValidationError: The property is not on the group (`attr` is `$unset`).

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import delete_group_property

        @flow
        def forget_seats(key: str) -> dict:
            credentials = PostHogCredentials.load("my-posthog")
            return delete_group_property(credentials, 0, key, "seats").group_properties

        print(forget_seats("company-00000"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.delete_group_property(group_type_index, group_key, key)
