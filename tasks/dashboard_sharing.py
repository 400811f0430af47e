"""Tasks for sharing dashboards (`/api/projects/{id}/dashboards/{dashboard_id}/sharing/`).

PostHog's `posthog/api/sharing.py` serves these routes. Reads need the scope
`sharing_configuration:read`, writes `sharing_configuration:write`; password protection
needs the organization's Advanced Permissions feature. An unknown dashboard answers 404
`Dashboard not found.` (`NotFoundError`).
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import SharePasswordCreated, SharingConfiguration
from prefect_posthog.tasks._common import api_task, client_for


@api_task("Get PostHog dashboard sharing", idempotent=True)
def get_dashboard_sharing(
    credentials: PostHogCredentials, resource_id: int | str, project_id: int | str | None = None
) -> SharingConfiguration:
    """Read the dashboard's sharing configuration (`GET dashboards/{id}/sharing/`).

    Scope `sharing_configuration:read`. PostHog returns one object; before anything is
    saved, an unsaved one whose `access_token` is random on every call. A dashboard
    still carrying a legacy `share_token` has it adopted and saved by this read.

    Args:
        credentials: PostHog credentials block.
        resource_id: The dashboard id.
        project_id: Override the block's project.

    Returns:
        The configuration: `enabled`, `access_token`, `settings`, `password_required` and
        the active `share_passwords` (ids and notes; plaintexts are never returned).

    Raises:
        NotFoundError: No such dashboard in the project.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import get_dashboard_sharing

        @flow
        def dashboard_share_status(dashboard_id: int) -> tuple[bool, int]:
            sharing = get_dashboard_sharing(PostHogCredentials.load("my-posthog"), dashboard_id)
            return sharing.enabled, len(sharing.share_passwords)

        print(dashboard_share_status(1))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.get_sharing("dashboard", resource_id)


@api_task("Update PostHog dashboard sharing", idempotent=True)
def update_dashboard_sharing(
    credentials: PostHogCredentials,
    resource_id: int | str,
    enabled: bool | None = None,
    settings: dict[str, Any] | None = None,
    password_required: bool | None = None,
    project_id: int | str | None = None,
) -> SharingConfiguration:
    """Enable or disable sharing of the dashboard, change its settings or password protection.

    Calls `PATCH dashboards/{id}/sharing/` with the arguments given. Scope
    `sharing_configuration:write`. Turning sharing on for an dashboard whose sharing is off
    issues a **new link** (every earlier one dies at once): use the returned
    `access_token`. Disabling, or enabling an enabled share, keeps the link. Idempotent in
    state, so it is retried.

    Args:
        credentials: PostHog credentials block.
        resource_id: The dashboard id.
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
        from prefect_posthog.tasks import update_dashboard_sharing

        @flow
        def publish_dashboard(dashboard_id: int) -> str:
            credentials = PostHogCredentials.load("my-posthog")
            sharing = update_dashboard_sharing(credentials, dashboard_id, enabled=True,
                                             settings={"whitelabel": True})
            return f"{credentials.host}/shared/{sharing.access_token}"

        print(publish_dashboard(2))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.update_sharing("dashboard", resource_id, enabled=enabled,
                                      settings=settings, password_required=password_required)


@api_task("Create PostHog dashboard sharing password", idempotent=False, secret=True)
def create_dashboard_sharing_password(
    credentials: PostHogCredentials,
    resource_id: int | str,
    raw_password: SecretStr | None = None,
    note: str | None = None,
    project_id: int | str | None = None,
) -> SharePasswordCreated:
    """Add a share password to the dashboard (`POST dashboards/{id}/sharing/passwords/`, 201).

    Scope `sharing_configuration:write`. The plaintext comes back once, as a `SecretStr`;
    the result is never persisted. Not retried (each call adds a password): a lost
    response raises `OutcomeUnknownError`; the password-reset flow reconciles by note.

    Args:
        credentials: PostHog credentials block.
        resource_id: The dashboard id.
        raw_password: The password (at least 8 characters); PostHog generates one if
            omitted.
        note: A note shown beside the password in PostHog (at most 100 characters).
        project_id: Override the block's project.

    Returns:
        The new password's `id`, `note` and plaintext `password`.

    Raises:
        PreconditionFailedError: Password protection is off for the dashboard (turn it on
            with `update_dashboard_sharing(..., password_required=True)`).
        FeatureNotAvailableError: The organization lacks Advanced Permissions.

    Example:
        ```python
        from prefect import flow
        from prefect.blocks.system import Secret
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import (
            create_dashboard_sharing_password,
            update_dashboard_sharing,
        )

        @flow
        def protect_dashboard(dashboard_id: int) -> int:
            credentials = PostHogCredentials.load("my-posthog")
            update_dashboard_sharing(credentials, dashboard_id, enabled=True,
                                     password_required=True)
            created = create_dashboard_sharing_password(credentials, dashboard_id,
                                                        note="board meeting")
            # Where the viewers' tooling reads it; the flow itself never returns it.
            Secret(value=created.password).save(f"dashboard-{dashboard_id}-share-password",
                                                overwrite=True)
            return created.id

        print(protect_dashboard(3))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.create_sharing_password("dashboard", resource_id,
                                               raw_password=raw_password, note=note)


@api_task("Delete PostHog dashboard sharing password", idempotent=False)
def delete_dashboard_sharing_password(
    credentials: PostHogCredentials,
    resource_id: int | str,
    password_id: int,
    project_id: int | str | None = None,
) -> None:
    """Deactivate one share password of the dashboard.

    Calls `DELETE dashboards/{id}/sharing/passwords/{password_id}/` (204). Scope
    `sharing_configuration:write`. A repeat after a lost response answers 404; the client
    treats that repeat as done.

    Args:
        credentials: PostHog credentials block.
        resource_id: The dashboard id.
        password_id: The password's id (from `get_dashboard_sharing(...).share_passwords`).
        project_id: Override the block's project.

    Raises:
        NotFoundError: No active password with that id (a link refresh gives passwords
            new ids).

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import (
            create_dashboard_sharing_password,
            delete_dashboard_sharing_password,
            get_dashboard_sharing,
            update_dashboard_sharing,
        )

        @flow
        def guest_access(dashboard_id: int) -> int:
            credentials = PostHogCredentials.load("my-posthog")
            update_dashboard_sharing(credentials, dashboard_id, enabled=True,
                                     password_required=True)
            guest = create_dashboard_sharing_password(credentials, dashboard_id, note="guest")
            ...  # the guest's visit; then the password goes
            delete_dashboard_sharing_password(credentials, dashboard_id, guest.id)
            return len(get_dashboard_sharing(credentials, dashboard_id).share_passwords)

        print(guest_access(2))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        posthog.delete_sharing_password("dashboard", resource_id, password_id)


@api_task("Refresh PostHog dashboard sharing link", idempotent=False)
def refresh_dashboard_sharing(
    credentials: PostHogCredentials, resource_id: int | str, project_id: int | str | None = None
) -> SharingConfiguration:
    """Rotate the dashboard's share link (`POST dashboards/{id}/sharing/refresh/`).

    Scope `sharing_configuration:write`. The old link keeps working for 300 seconds;
    active passwords are copied under new ids. Not retried: a lost response raises
    `OutcomeUnknownError`.

    Args:
        credentials: PostHog credentials block.
        resource_id: The dashboard id.
        project_id: Override the block's project.

    Returns:
        The new configuration, with the new `access_token`.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import refresh_dashboard_sharing

        @flow
        def rotate_dashboard_link(dashboard_id: int) -> str:
            credentials = PostHogCredentials.load("my-posthog")
            sharing = refresh_dashboard_sharing(credentials, dashboard_id)
            return f"{credentials.host}/shared/{sharing.access_token}"

        print(rotate_dashboard_link(1))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.refresh_sharing("dashboard", resource_id)
