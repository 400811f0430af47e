"""Tasks for sharing insights (`/api/projects/{id}/insights/{insight_id}/sharing/`).

PostHog's `posthog/api/sharing.py` serves these routes. Reads need the scope
`sharing_configuration:read`, writes `sharing_configuration:write`; password protection
needs the organization's Advanced Permissions feature. An unknown insight answers 404
`Insight not found.` (`NotFoundError`).
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import SharePasswordCreated, SharingConfiguration
from prefect_posthog.tasks._common import api_task, client_for


@api_task("Get PostHog insight sharing", idempotent=True)
def get_insight_sharing(
    credentials: PostHogCredentials, resource_id: int | str, project_id: int | str | None = None
) -> SharingConfiguration:
    """Read the insight's sharing configuration (`GET insights/{id}/sharing/`).

    Scope `sharing_configuration:read`. PostHog returns one object; before anything is
    saved, an unsaved one whose `access_token` is random on every call.

    Args:
        credentials: PostHog credentials block.
        resource_id: The insight id.
        project_id: Override the block's project.

    Returns:
        The configuration: `enabled`, `access_token`, `settings`, `password_required` and
        the active `share_passwords` (ids and notes; plaintexts are never returned).

    Raises:
        NotFoundError: No such insight in the project.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import get_insight_sharing

        @flow
        def insight_share_status(insight_id: int) -> tuple[bool, int]:
            sharing = get_insight_sharing(PostHogCredentials.load("my-posthog"), insight_id)
            return sharing.enabled, len(sharing.share_passwords)

        print(insight_share_status(1))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.get_sharing("insight", resource_id)


@api_task("Update PostHog insight sharing", idempotent=True)
def update_insight_sharing(
    credentials: PostHogCredentials,
    resource_id: int | str,
    enabled: bool | None = None,
    settings: dict[str, Any] | None = None,
    password_required: bool | None = None,
    project_id: int | str | None = None,
) -> SharingConfiguration:
    """Enable or disable sharing of the insight, change its settings or password protection.

    Calls `PATCH insights/{id}/sharing/` with the arguments given. Scope
    `sharing_configuration:write`. Turning sharing on for an insight whose sharing is off
    issues a **new link** (every earlier one dies at once): use the returned
    `access_token`. Disabling, or enabling an enabled share, keeps the link. Idempotent in
    state, so it is retried.

    Args:
        credentials: PostHog credentials block.
        resource_id: The insight id.
        enabled: Turn the public link on or off.
        settings: Display settings (`whitelabel`, `noHeader`, `legend`, `detailed`, ...).
        password_required: Require a share password to view.
        project_id: Override the block's project.

    Returns:
        The saved configuration.

    Raises:
        InvalidInputError: None of `enabled`, `settings`, `password_required` given.
        FeatureNotAvailableError: `password_required` without Advanced Permissions.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import update_insight_sharing

        @flow
        def publish_insight(insight_id: int) -> str:
            credentials = PostHogCredentials.load("my-posthog")
            sharing = update_insight_sharing(credentials, insight_id, enabled=True,
                                             settings={"whitelabel": True})
            return f"{credentials.host}/shared/{sharing.access_token}"

        print(publish_insight(2))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.update_sharing("insight", resource_id, enabled=enabled,
                                      settings=settings, password_required=password_required)


@api_task("Create PostHog insight sharing password", idempotent=False, secret=True)
def create_insight_sharing_password(
    credentials: PostHogCredentials,
    resource_id: int | str,
    raw_password: SecretStr | None = None,
    note: str | None = None,
    project_id: int | str | None = None,
) -> SharePasswordCreated:
    """Add a share password to the insight (`POST insights/{id}/sharing/passwords/`, 201).

    Scope `sharing_configuration:write`. The plaintext comes back once, as a `SecretStr`;
    the result is never persisted. Not retried (each call adds a password): a lost
    response raises `OutcomeUnknownError`; the password-reset flow reconciles by note.

    Args:
        credentials: PostHog credentials block.
        resource_id: The insight id.
        raw_password: The password (at least 8 characters); PostHog generates one if
            omitted.
        note: A note shown beside the password in PostHog (at most 100 characters).
        project_id: Override the block's project.

    Returns:
        The new password's `id`, `note` and plaintext `password`.

    Raises:
        PreconditionFailedError: Password protection is off for the insight (turn it on
            with `update_insight_sharing(..., password_required=True)`).
        FeatureNotAvailableError: The organization lacks Advanced Permissions.

    Example:
        ```python
        from prefect import flow
        from prefect.blocks.system import Secret
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import create_insight_sharing_password

        @flow
        def new_viewer_password(insight_id: int) -> int:
            created = create_insight_sharing_password(
                PostHogCredentials.load("my-posthog"), insight_id, note="board meeting")
            # Where the viewers' tooling reads it; the flow itself never returns it.
            Secret(value=created.password).save(f"insight-{insight_id}-share-password",
                                                overwrite=True)
            return created.id

        print(new_viewer_password(1))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.create_sharing_password("insight", resource_id,
                                               raw_password=raw_password, note=note)


@api_task("Delete PostHog insight sharing password", idempotent=False)
def delete_insight_sharing_password(
    credentials: PostHogCredentials,
    resource_id: int | str,
    password_id: int,
    project_id: int | str | None = None,
) -> None:
    """Deactivate one share password of the insight.

    Calls `DELETE insights/{id}/sharing/passwords/{password_id}/` (204). Scope
    `sharing_configuration:write`. A repeat after a lost response answers 404; the client
    treats that repeat as done.

    Args:
        credentials: PostHog credentials block.
        resource_id: The insight id.
        password_id: The password's id (from `get_insight_sharing(...).share_passwords`).
        project_id: Override the block's project.

    Raises:
        NotFoundError: No active password with that id (a link refresh gives passwords
            new ids).

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import delete_insight_sharing_password, get_insight_sharing

        @flow
        def revoke_insight_passwords(insight_id: int) -> int:
            credentials = PostHogCredentials.load("my-posthog")
            passwords = get_insight_sharing(credentials, insight_id).share_passwords
            for password in passwords:
                delete_insight_sharing_password(credentials, insight_id, password.id)
            return len(passwords)

        print(revoke_insight_passwords(1))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        posthog.delete_sharing_password("insight", resource_id, password_id)


@api_task("Refresh PostHog insight sharing link", idempotent=False)
def refresh_insight_sharing(
    credentials: PostHogCredentials, resource_id: int | str, project_id: int | str | None = None
) -> SharingConfiguration:
    """Rotate the insight's share link (`POST insights/{id}/sharing/refresh/`).

    Scope `sharing_configuration:write`. The old link keeps working for 300 seconds;
    active passwords are copied under new ids. Not retried: a lost response raises
    `OutcomeUnknownError`.

    Args:
        credentials: PostHog credentials block.
        resource_id: The insight id.
        project_id: Override the block's project.

    Returns:
        The new configuration, with the new `access_token`.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import refresh_insight_sharing

        @flow
        def rotate_insight_link(insight_id: int) -> str:
            credentials = PostHogCredentials.load("my-posthog")
            sharing = refresh_insight_sharing(credentials, insight_id)
            return f"{credentials.host}/shared/{sharing.access_token}"

        print(rotate_insight_link(1))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.refresh_sharing("insight", resource_id)
