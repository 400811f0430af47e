"""Tasks for project secret API keys (`phs_...`, `/project_secret_api_keys/`).

Reads need `project:read`; writes need `project:write` and project admin rights. The
plaintext `value` exists only in the results of create and roll, as a `SecretStr`, and
those results are never persisted.
"""

from __future__ import annotations

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import ProjectSecretAPIKey
from prefect_posthog.tasks._common import api_task, client_for


@api_task("List PostHog project secret API keys", idempotent=True)
def list_project_secret_api_keys(
    credentials: PostHogCredentials, project_id: int | str | None = None
) -> list[ProjectSecretAPIKey]:
    """Every project secret API key, newest first, values hidden (`mask_value` only).

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import list_project_secret_api_keys

        @flow
        def inventory():
            keys = list_project_secret_api_keys(PostHogCredentials.load("my-posthog"))
            return [(k.label, k.mask_value, k.last_rolled_at) for k in keys]
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return list(posthog.iter_project_secret_api_keys())


@api_task("Create PostHog project secret API key", idempotent=False, secret=True,
          run_name="create_project_secret_api_key-{label}")
def create_project_secret_api_key(
    credentials: PostHogCredentials,
    label: str,
    scopes: list[str],
    project_id: int | str | None = None,
) -> ProjectSecretAPIKey:
    """Create a key (201); its `value` is returned only here, as a `SecretStr`.

    `label` is unique per project (at most 40 characters); `scopes` come from
    PostHog's allow-list (e.g. `feature_flag:read`); at most 50 keys per project. Not
    retried: a lost response raises `OutcomeUnknownError` — find the key by label and roll
    it to get a usable value.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import create_project_secret_api_key

        @flow
        def new_backend_key():
            key = create_project_secret_api_key(
                PostHogCredentials.load("my-posthog"), "backend", ["feature_flag:read"])
            return key.mask_value
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.create_project_secret_api_key(label, scopes)


@api_task("Get PostHog project secret API key", idempotent=True,
          run_name="get_project_secret_api_key-{key_id}")
def get_project_secret_api_key(
    credentials: PostHogCredentials, key_id: str, project_id: int | str | None = None
) -> ProjectSecretAPIKey:
    """Read one key (value hidden).

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import get_project_secret_api_key

        @flow
        def when_rolled(key_id: str):
            key = get_project_secret_api_key(PostHogCredentials.load("my-posthog"), key_id)
            return key.last_rolled_at
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.get_project_secret_api_key(key_id)


@api_task("Update PostHog project secret API key", idempotent=True,
          run_name="update_project_secret_api_key-{key_id}")
def update_project_secret_api_key(
    credentials: PostHogCredentials,
    key_id: str,
    label: str | None = None,
    scopes: list[str] | None = None,
    project_id: int | str | None = None,
) -> ProjectSecretAPIKey:
    """Change a key's label and/or scopes (`PATCH`). Idempotent, so retried.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import update_project_secret_api_key

        @flow
        def rename(key_id: str):
            update_project_secret_api_key(PostHogCredentials.load("my-posthog"), key_id,
                                          label="backend-2027")
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.update_project_secret_api_key(key_id, label=label, scopes=scopes)


@api_task("Delete PostHog project secret API key", idempotent=False,
          run_name="delete_project_secret_api_key-{key_id}")
def delete_project_secret_api_key(
    credentials: PostHogCredentials, key_id: str, project_id: int | str | None = None
) -> None:
    """Delete a key (204). A repeat after a lost response (404) counts as done.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import delete_project_secret_api_key

        @flow
        def retire(key_id: str):
            delete_project_secret_api_key(PostHogCredentials.load("my-posthog"), key_id)
        ```
    """
    with client_for(credentials, project_id) as posthog:
        posthog.delete_project_secret_api_key(key_id)


@api_task("Roll PostHog project secret API key", idempotent=False, secret=True,
          run_name="roll_project_secret_api_key-{key_id}")
def roll_project_secret_api_key(
    credentials: PostHogCredentials, key_id: str, project_id: int | str | None = None
) -> ProjectSecretAPIKey:
    """Give a key a new value; the old value stops working at once.

    The new `value` is returned once, as a `SecretStr`, and never persisted. Not retried:
    a lost response raises `OutcomeUnknownError` (compare `last_rolled_at`). The rotation
    flow does that reconciliation and stores the value for you.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import roll_project_secret_api_key

        @flow
        def roll(key_id: str):
            key = roll_project_secret_api_key(PostHogCredentials.load("my-posthog"), key_id)
            return key.mask_value
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.roll_project_secret_api_key(key_id)
