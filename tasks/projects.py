"""Tasks for the project itself and the query API (`/api/projects/{id}/`, `query/`).

`get_project` needs `project:read`; `query_groups` needs `query:read` and spends the
key's HogQL budget (120 calls an hour), kept apart from the default one.
"""

from __future__ import annotations

from typing import Any

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import QUERY_MAX_ROWS, Project
from prefect_posthog.tasks._common import api_task, client_for


@api_task("Get PostHog project", idempotent=True)
def get_project(credentials: PostHogCredentials, project_id: int | str | None = None) -> Project:
    """The project: id, name and its public capture token `api_token` (`phc_...`).

    Calls `GET /api/projects/{id}/`. Scope `project:read`.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import get_project

        @flow
        def capture_token() -> str:
            return get_project(PostHogCredentials.load("my-posthog")).api_token

        print(capture_token())
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.get_project()


@api_task("Query PostHog groups", idempotent=True,
          run_name="query_groups-{group_type_index}")
def query_groups(
    credentials: PostHogCredentials,
    group_type_index: int,
    after: str | None = None,
    limit: int = QUERY_MAX_ROWS,
    project_id: int | str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Up to 50,000 groups of a type as `(key, properties)` in one HogQL call, by key.

    Calls `POST query/` with a HogQL query over `groups`, ordered by key and starting
    after `after` (page with the last key you got). Scope `query:read`; spends the
    key's HogQL budget (120 calls an hour), not the default one.

    Example:
        ```python
        from collections import Counter

        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import query_groups

        @flow
        def companies_per_plan() -> Counter:
            rows = query_groups(PostHogCredentials.load("my-posthog"), 0)
            return Counter(props.get("plan") for _key, props in rows)

        print(companies_per_plan())
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.query_groups(group_type_index, after=after, limit=limit)
