"""Tasks for sharing session recordings (`.../session_recordings/{session_id}/sharing/`).

PostHog's `posthog/api/sharing.py` serves these routes. Reads need the scope
`sharing_configuration:read`, writes `sharing_configuration:write`; password protection
needs the organization's Advanced Permissions feature. A recording is addressed by its
session id (a string) and is never 404: PostHog builds the recording object from the id
without looking it up.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import SharePasswordCreated, SharingConfiguration
from prefect_posthog.tasks._common import api_task, client_for


@api_task("Get PostHog session recording sharing", idempotent=True)
def get_session_recording_sharing(
    credentials: PostHogCredentials, resource_id: int | str, project_id: int | str | None = None
) -> SharingConfiguration:
    """Read the recording's sharing configuration (`GET session_recordings/{id}/sharing/`).

    Scope `sharing_configuration:read`. PostHog returns one object; before anything is
    saved, an unsaved one whose `access_token` is random on every call.

    Args:
        credentials: PostHog credentials block.
        resource_id: The recording's session id.
        project_id: Override the block's project.

    Returns:
        The configuration: `enabled`, `access_token`, `settings`, `password_required` and
        the active `share_passwords` (ids and notes; plaintexts are never returned).

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import get_session_recording_sharing

        @flow
        def recording_is_public(session_id: str) -> bool:
            credentials = PostHogCredentials.load("my-posthog")
            return get_session_recording_sharing(credentials, session_id).enabled

        print(recording_is_public("0190b5a8-3c1e-7d2f-9a4b-6e8f1c2d3a4b"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.get_sharing("session_recording", resource_id)


@api_task("Update PostHog session recording sharing", idempotent=True)
def update_session_recording_sharing(
    credentials: PostHogCredentials,
    resource_id: int | str,
    enabled: bool | None = None,
    settings: dict[str, Any] | None = None,
    password_required: bool | None = None,
    project_id: int | str | None = None,
) -> SharingConfiguration:
    """Enable or disable sharing of the recording, change its settings or password protection.

    Calls `PATCH session_recordings/{id}/sharing/` with the arguments given (PostHog saves
    the recording row as a side effect). Scope `sharing_configuration:write`. Turning
    sharing on for a recording whose sharing is off issues a **new link** (every earlier
    one dies at once): use the returned `access_token`. Disabling, or enabling an enabled
    share, keeps the link. Idempotent in state, so it is retried.

    Args:
        credentials: PostHog credentials block.
        resource_id: The recording's session id.
        enabled: Turn the public link on or off.
        settings: Display settings (`whitelabel`, `noHeader`, `showInspector`, ...).
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
        from prefect_posthog.tasks import update_session_recording_sharing

        @flow
        def publish_recording(session_id: str) -> str:
            credentials = PostHogCredentials.load("my-posthog")
            sharing = update_session_recording_sharing(credentials, session_id, enabled=True,
                                                       settings={"showInspector": True})
            return f"{credentials.host}/shared/{sharing.access_token}"

        print(publish_recording("0190b5a8-3c1e-7d2f-9a4b-6e8f1c2d3a4b"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.update_sharing("session_recording", resource_id, enabled=enabled,
                                      settings=settings, password_required=password_required)


@api_task("Create PostHog session recording sharing password", idempotent=False, secret=True)
def create_session_recording_sharing_password(
    credentials: PostHogCredentials,
    resource_id: int | str,
    raw_password: SecretStr | None = None,
    note: str | None = None,
    project_id: int | str | None = None,
) -> SharePasswordCreated:
    """Add a share password to the recording (`POST .../sharing/passwords/`, 201).

    Scope `sharing_configuration:write`. The plaintext comes back once, as a `SecretStr`;
    the result is never persisted. Not retried (each call adds a password): a lost
    response raises `OutcomeUnknownError`; the password-reset flow reconciles by note.

    Args:
        credentials: PostHog credentials block.
        resource_id: The recording's session id.
        raw_password: The password (at least 8 characters); PostHog generates one if
            omitted.
        note: A note shown beside the password in PostHog (at most 100 characters).
        project_id: Override the block's project.

    Returns:
        The new password's `id`, `note` and plaintext `password`.

    Raises:
        PreconditionFailedError: Password protection is off for the recording (turn it on
            with `update_session_recording_sharing(..., password_required=True)`).
        FeatureNotAvailableError: The organization lacks Advanced Permissions.

    Example:
        ```python
        from prefect import flow
        from prefect.blocks.system import Secret
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import (
            create_session_recording_sharing_password,
            update_session_recording_sharing,
        )

        @flow
        def protect_recording(session_id: str) -> int:
            credentials = PostHogCredentials.load("my-posthog")
            update_session_recording_sharing(credentials, session_id, enabled=True,
                                             password_required=True)
            created = create_session_recording_sharing_password(credentials, session_id,
                                                                note="support ticket 4711")
            # Where the viewers' tooling reads it; the flow itself never returns it.
            Secret(value=created.password).save("recording-share-password", overwrite=True)
            return created.id

        print(protect_recording("0190b5a8-3c1e-7d2f-9a4b-6e8f1c2d3a4b"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.create_sharing_password("session_recording", resource_id,
                                               raw_password=raw_password, note=note)


@api_task("Delete PostHog session recording sharing password", idempotent=False)
def delete_session_recording_sharing_password(
    credentials: PostHogCredentials,
    resource_id: int | str,
    password_id: int,
    project_id: int | str | None = None,
) -> None:
    """Deactivate one share password of the recording.

    Calls `DELETE session_recordings/{id}/sharing/passwords/{password_id}/` (204). Scope
    `sharing_configuration:write`. A repeat after a lost response answers 404; the client
    treats that repeat as done.

    Args:
        credentials: PostHog credentials block.
        resource_id: The recording's session id.
        password_id: The password's id (from
            `get_session_recording_sharing(...).share_passwords`).
        project_id: Override the block's project.

    Raises:
        NotFoundError: No active password with that id (a link refresh gives passwords
            new ids).

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import (
            create_session_recording_sharing_password,
            delete_session_recording_sharing_password,
            get_session_recording_sharing,
            update_session_recording_sharing,
        )

        @flow
        def guest_access(session_id: str) -> int:
            credentials = PostHogCredentials.load("my-posthog")
            update_session_recording_sharing(credentials, session_id, enabled=True,
                                             password_required=True)
            guest = create_session_recording_sharing_password(credentials, session_id,
                                                              note="guest")
            ...  # the guest's visit; then the password goes
            delete_session_recording_sharing_password(credentials, session_id, guest.id)
            return len(get_session_recording_sharing(credentials, session_id).share_passwords)

        print(guest_access("0190b5a8-3c1e-7d2f-9a4b-6e8f1c2d3a4b"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        posthog.delete_sharing_password("session_recording", resource_id, password_id)


@api_task("Refresh PostHog session recording sharing link", idempotent=False)
def refresh_session_recording_sharing(
    credentials: PostHogCredentials, resource_id: int | str, project_id: int | str | None = None
) -> SharingConfiguration:
    """Rotate the recording's share link (`POST session_recordings/{id}/sharing/refresh/`).

    Scope `sharing_configuration:write`. The old link keeps working for 300 seconds;
    active passwords are copied under new ids. Not retried: a lost response raises
    `OutcomeUnknownError`.

    Args:
        credentials: PostHog credentials block.
        resource_id: The recording's session id.
        project_id: Override the block's project.

    Returns:
        The new configuration, with the new `access_token`.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import refresh_session_recording_sharing

        @flow
        def rotate_recording_link(session_id: str) -> str:
            credentials = PostHogCredentials.load("my-posthog")
            sharing = refresh_session_recording_sharing(credentials, session_id)
            return f"{credentials.host}/shared/{sharing.access_token}"

        print(rotate_recording_link("0190b5a8-3c1e-7d2f-9a4b-6e8f1c2d3a4b"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.refresh_sharing("session_recording", resource_id)
