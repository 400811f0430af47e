"""Tasks for project secret API keys (`phs_...`, `/project_secret_api_keys/`).

PostHog's `posthog/api/project_secret_api_key.py` serves these routes. Reads need
`project:read`; writes need `project:write` and project admin rights. The plaintext
`value` exists only in the results of create and roll, as a `SecretStr`, and those
results are never persisted. Key ids are random strings: look a key up by its label
(unique per project) with `list_project_secret_api_keys`.
"""

from __future__ import annotations

from pydantic import SecretStr

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import ProjectSecretAPIKey
from prefect_posthog.tasks._common import api_task, client_for


@api_task("List PostHog project secret API keys", idempotent=True)
def list_project_secret_api_keys(
    credentials: PostHogCredentials, project_id: int | str | None = None
) -> list[ProjectSecretAPIKey]:
    """Every project secret API key, newest first, values hidden (`mask_value` only).

    Calls `GET project_secret_api_keys/`, following its pages. Scope `project:read`.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import list_project_secret_api_keys

        @flow
        def inventory() -> list[tuple]:
            keys = list_project_secret_api_keys(PostHogCredentials.load("my-posthog"))
            return [(k.label, k.mask_value, k.last_rolled_at) for k in keys]

        print(inventory())
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
    """Create a key (`POST project_secret_api_keys/`, 201). Scope `project:write`.

    Its `value` is returned only here, as a `SecretStr`. Not retried: a repeat fails with
    a duplicate label, and a lost response raises `OutcomeUnknownError` — find the key by
    label and roll it to get a usable value.

    Args:
        credentials: PostHog credentials block.
        label: Unique per project, at most 40 characters.
        scopes: From PostHog's allow-list, e.g. `feature_flag:read`.
        project_id: Override the block's project.

    Returns:
        The key, with its plaintext `value`.

    Raises:
        ValidationError: A duplicate label, a scope outside the allow-list (`attr` is
            `scopes`), or the project already has 50 keys.

    Example:
        ```python
        from prefect import flow
        from prefect.blocks.system import Secret
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import create_project_secret_api_key

        @flow
        def new_backend_key() -> str:
            key = create_project_secret_api_key(
                PostHogCredentials.load("my-posthog"), "backend", ["feature_flag:read"])
            # Where the backend reads it; the flow itself never returns the value.
            Secret(value=key.value).save("posthog-backend-key", overwrite=True)
            return key.mask_value

        print(new_backend_key())
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.create_project_secret_api_key(label, scopes)


@api_task("Get PostHog project secret API key", idempotent=True,
          run_name="get_project_secret_api_key-{key_id}")
def get_project_secret_api_key(
    credentials: PostHogCredentials, key_id: str, project_id: int | str | None = None
) -> ProjectSecretAPIKey:
    """Read one key, value hidden (`GET project_secret_api_keys/{id}/`).

    Scope `project:read`.

    Raises:
        NotFoundError: No such key in the project.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import get_project_secret_api_key, list_project_secret_api_keys

        @flow
        def value_issued_at(label: str) -> str:
            credentials = PostHogCredentials.load("my-posthog")
            keys = list_project_secret_api_keys(credentials)
            key_id = next(k.id for k in keys if k.label == label)
            key = get_project_secret_api_key(credentials, key_id)
            return f"{key.mask_value}: {key.last_rolled_at or key.created_at:%Y-%m-%d}"

        print(value_issued_at("flags-backend"))
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
    """Change a key's label and/or scopes (`PATCH project_secret_api_keys/{id}/`).

    Scope `project:write`. Idempotent, so retried. PostHog checks label uniqueness only
    on create, so the client refuses a label another key has before sending.

    Raises:
        InvalidInputError: Neither `label` nor `scopes` given, or the label is taken.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import (
            list_project_secret_api_keys,
            update_project_secret_api_key,
        )

        @flow
        def rename(label: str, new_label: str) -> str:
            credentials = PostHogCredentials.load("my-posthog")
            keys = list_project_secret_api_keys(credentials)
            key_id = next(k.id for k in keys if k.label == label)
            return update_project_secret_api_key(credentials, key_id, label=new_label).label

        print(rename("flags-edge", "flags-edge-2027"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.update_project_secret_api_key(key_id, label=label, scopes=scopes)


@api_task("Replace PostHog project secret API key", idempotent=True,
          run_name="replace_project_secret_api_key-{key_id}")
def replace_project_secret_api_key(
    credentials: PostHogCredentials,
    key_id: str,
    label: str,
    scopes: list[str],
    project_id: int | str | None = None,
) -> ProjectSecretAPIKey:
    """Set a key's label and scopes together (`PUT project_secret_api_keys/{id}/`).

    Scope `project:write`. Unlike `update_project_secret_api_key` both fields are
    required, so the key ends exactly as given. Idempotent, so retried. The value does
    not change.

    Args:
        credentials: PostHog credentials block.
        key_id: The key's id.
        label: The new label (unique per project, at most 40 characters).
        scopes: The complete new scope list.
        project_id: Override the block's project.

    Returns:
        The key (value hidden).

    Raises:
        InvalidInputError: A blank label, no scopes, or a label another key has.
        ValidationError: A scope outside PostHog's allow-list (`attr` is `scopes`).

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import (
            list_project_secret_api_keys,
            replace_project_secret_api_key,
        )

        @flow
        def reset_scopes(label: str) -> list[str]:
            credentials = PostHogCredentials.load("my-posthog")
            keys = list_project_secret_api_keys(credentials)
            key_id = next(k.id for k in keys if k.label == label)
            key = replace_project_secret_api_key(credentials, key_id, label,
                                                 ["feature_flag:read", "experiment:read"])
            return key.scopes

        print(reset_scopes("flags-backend"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.replace_project_secret_api_key(key_id, label, scopes)


@api_task("Delete PostHog project secret API key", idempotent=False,
          run_name="delete_project_secret_api_key-{key_id}")
def delete_project_secret_api_key(
    credentials: PostHogCredentials, key_id: str, project_id: int | str | None = None
) -> None:
    """Delete a key (`DELETE project_secret_api_keys/{id}/`, 204). Scope `project:write`.

    Its value stops working at once. A repeat after a lost response (404) counts as done.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import (
            delete_project_secret_api_key,
            list_project_secret_api_keys,
        )

        @flow
        def retire(label: str) -> list[str]:
            credentials = PostHogCredentials.load("my-posthog")
            keys = list_project_secret_api_keys(credentials)
            key_id = next(k.id for k in keys if k.label == label)
            delete_project_secret_api_key(credentials, key_id)
            return [k.label for k in list_project_secret_api_keys(credentials)]

        print(retire("flags-edge"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        posthog.delete_project_secret_api_key(key_id)


@api_task("Roll PostHog project secret API key", idempotent=False, secret=True,
          run_name="roll_project_secret_api_key-{key_id}")
def roll_project_secret_api_key(
    credentials: PostHogCredentials, key_id: str, project_id: int | str | None = None
) -> ProjectSecretAPIKey:
    """Give a key a new value (`POST project_secret_api_keys/{id}/roll/`).

    Scope `project:write`. The old value stops working at once. The new `value` is
    returned once, as a `SecretStr`, and never persisted. Not retried: a lost response
    raises `OutcomeUnknownError` (compare `last_rolled_at`). The rotation flow does that
    reconciliation and stores the value for you.

    Example:
        ```python
        from prefect import flow
        from prefect.blocks.system import Secret
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import list_project_secret_api_keys, roll_project_secret_api_key

        @flow
        def roll(label: str) -> str:
            credentials = PostHogCredentials.load("my-posthog")
            keys = list_project_secret_api_keys(credentials)
            key_id = next(k.id for k in keys if k.label == label)
            key = roll_project_secret_api_key(credentials, key_id)
            # Store it where consumers read it before anything else can fail.
            Secret(value=key.value).save(f"posthog-{label}", overwrite=True)
            return key.mask_value

        print(roll("flags-backend"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.roll_project_secret_api_key(key_id)


@api_task("Check PostHog project secret API key", idempotent=True)
def check_project_secret_api_key(
    credentials: PostHogCredentials, value: SecretStr, project_id: int | str | None = None
) -> bool:
    """Whether a `phs_` value authenticates now, the way its consumers use it.

    Calls `GET {ingestion host}/flags/definitions?token=<project token>` with the value
    as Bearer token: the route PostHog's SDKs poll for local evaluation, served by
    PostHog's flags service (`rust/feature-flags/src/api/flag_definitions.rs`) to project
    secret API keys with `feature_flag:read`. A 402 (`quota_limited`) counts as
    authenticating: PostHog sends it only after the key passed. On an older self-hosted
    PostHog without that route (404), Django's `feature_flags/local_evaluation` is
    asked instead. The project token is read with `get_project` (`project:read`); the
    personal key's budget is not spent otherwise. The ingestion host is the block's
    `capture_host`, else Cloud's `*.i.posthog.com`, else the host. Use it as the last
    word after storing a rolled value. Transient failures are retried; a rejected value
    is an answer (`False`), not a failure.

    Args:
        credentials: PostHog credentials block (host and project).
        value: The `phs_` value to check, as a `SecretStr`.
        project_id: Override the block's project.

    Returns:
        True when PostHog accepts the value (200, or 402 after authenticating), False
        when it answers 401.

    Example:
        ```python
        from prefect import flow
        from prefect.blocks.system import Secret
        from pydantic import SecretStr
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.tasks import (
            check_project_secret_api_key,
            list_project_secret_api_keys,
            roll_project_secret_api_key,
        )

        @flow
        def stored_key_is_live(label: str) -> bool:
            credentials = PostHogCredentials.load("my-posthog")
            keys = list_project_secret_api_keys(credentials)
            key_id = next(k.id for k in keys if k.label == label)
            key = roll_project_secret_api_key(credentials, key_id)
            Secret(value=key.value).save(f"posthog-{label}", overwrite=True)
            stored = Secret.load(f"posthog-{label}").get()
            return check_project_secret_api_key(credentials, SecretStr(stored))

        print(stored_key_is_live("flags-edge"))
        ```
    """
    with client_for(credentials, project_id) as posthog:
        return posthog.check_project_secret_api_key(value)
