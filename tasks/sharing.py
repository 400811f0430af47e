"""Tasks for sharing insights, session recordings and dashboards.

Each resource gets the same five tasks — `get_<r>_sharing`, `update_<r>_sharing`,
`create_<r>_sharing_password`, `delete_<r>_sharing_password`, `refresh_<r>_sharing` —
over `/api/projects/{id}/<resources>/{id}/sharing/`. Reads need
`sharing_configuration:read`, the rest `sharing_configuration:write`. Password
protection needs the organization's Advanced Permissions feature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import SharePasswordCreated, SharingConfiguration, SharingResource
from prefect_posthog.tasks._common import api_task, client_for

_EXAMPLE = '''
    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import {name}

        @flow
        def share():
            credentials = PostHogCredentials.load("my-posthog")
            return {name}(credentials, {rid}{extra})
        ```
'''


def _named(fn: Callable, name: str, resource: str, doc: str, extra: str = "") -> Callable:
    fn.__name__ = fn.__qualname__ = name
    rid = '"session-id"' if resource == "session_recording" else "42"
    fn.__doc__ = doc.format(r=resource.replace("_", " ")) + _EXAMPLE.format(
        name=name, rid=rid, extra=extra)
    return fn


def _sharing_tasks(resource: SharingResource) -> tuple[Callable, ...]:
    def get(credentials: PostHogCredentials, resource_id: int | str,
            project_id: int | str | None = None) -> SharingConfiguration:
        with client_for(credentials, project_id) as posthog:
            return posthog.get_sharing(resource, resource_id)

    def update(credentials: PostHogCredentials, resource_id: int | str,
               enabled: bool | None = None, settings: dict[str, Any] | None = None,
               password_required: bool | None = None,
               project_id: int | str | None = None) -> SharingConfiguration:
        with client_for(credentials, project_id) as posthog:
            return posthog.update_sharing(resource, resource_id, enabled=enabled,
                                          settings=settings, password_required=password_required)

    def create_password(credentials: PostHogCredentials, resource_id: int | str,
                        raw_password: SecretStr | None = None, note: str | None = None,
                        project_id: int | str | None = None) -> SharePasswordCreated:
        with client_for(credentials, project_id) as posthog:
            return posthog.create_sharing_password(resource, resource_id,
                                                   raw_password=raw_password, note=note)

    def delete_password(credentials: PostHogCredentials, resource_id: int | str,
                        password_id: int, project_id: int | str | None = None) -> None:
        with client_for(credentials, project_id) as posthog:
            posthog.delete_sharing_password(resource, resource_id, password_id)

    def refresh(credentials: PostHogCredentials, resource_id: int | str,
                project_id: int | str | None = None) -> SharingConfiguration:
        with client_for(credentials, project_id) as posthog:
            return posthog.refresh_sharing(resource, resource_id)

    label = resource.replace("_", " ")
    args = f"\n\n    `resource_id` is the {label} id."
    return (
        api_task(f"Get PostHog {label} sharing", idempotent=True)(_named(
            get, f"get_{resource}_sharing", resource,
            "Read the {r}'s sharing configuration (`GET .../sharing/`)." + args +
            "\n\n    PostHog returns one object; before anything is saved, an unsaved one "
            "whose\n    `access_token` is random on every call.\n")),
        api_task(f"Update PostHog {label} sharing", idempotent=True)(_named(
            update, f"update_{resource}_sharing", resource,
            "Enable or disable sharing of the {r}, change its settings or password "
            "protection\n    (`PATCH .../sharing/`). Turning sharing on for a {r} whose "
            "sharing is off issues a\n    **new link** (every earlier one dies at once); use "
            "the returned `access_token`.\n    Disabling, or enabling an enabled share, keeps "
            "the link." + args +
            "\n\n    Raises:\n        FeatureNotAvailableError: `password_required` without "
            "Advanced Permissions.\n", ", enabled=True")),
        api_task(f"Create PostHog {label} sharing password", idempotent=False, secret=True)(
            _named(create_password, f"create_{resource}_sharing_password", resource,
                   "Add a share password to the {r} (`POST .../sharing/passwords/`, 201)."
                   + args + "\n\n    The plaintext comes back once, as a `SecretStr`; the "
                   "result is never persisted.\n    Not retried (each call adds a password): a "
                   "lost response raises\n    `OutcomeUnknownError`; the password-reset flow "
                   "reconciles by note.\n", ', note="rotated by prefect"')),
        api_task(f"Delete PostHog {label} sharing password", idempotent=False)(_named(
            delete_password, f"delete_{resource}_sharing_password", resource,
            "Deactivate one share password of the {r} "
            "(`DELETE .../sharing/passwords/{{id}}/`)." + args +
            "\n\n    A repeat after a lost response answers 404; the client treats that "
            "repeat as done.\n", ", password_id=7")),
        api_task(f"Refresh PostHog {label} sharing link", idempotent=False)(_named(
            refresh, f"refresh_{resource}_sharing", resource,
            "Rotate the {r}'s share link (`POST .../sharing/refresh/`)." + args +
            "\n\n    The old link keeps working for 300 seconds; active passwords are copied "
            "under\n    new ids. Not retried: a lost response raises `OutcomeUnknownError`.\n")),
    )


(get_insight_sharing, update_insight_sharing, create_insight_sharing_password,
 delete_insight_sharing_password, refresh_insight_sharing) = _sharing_tasks("insight")
(get_session_recording_sharing, update_session_recording_sharing,
 create_session_recording_sharing_password, delete_session_recording_sharing_password,
 refresh_session_recording_sharing) = _sharing_tasks("session_recording")
(get_dashboard_sharing, update_dashboard_sharing, create_dashboard_sharing_password,
 delete_dashboard_sharing_password, refresh_dashboard_sharing) = _sharing_tasks("dashboard")
