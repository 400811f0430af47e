"""The recipe for reacting to a rotation: a flow a deployment trigger starts per rotated key.

`deployments/prefect.yaml` ships it as `follow-flag-key-rotation`: whenever a
`posthog.secret-api-key.rotated` event names a key labelled `flags-*` (rolled, repaired,
or given a successor by an overlap rotation), Prefect runs this flow with the key's id,
label and storage place taken from the event — never its value.
Copy it and put what your consumers must do in its place (redeploy a service, restart a
worker, refresh a cache): the new value is in the Secret block the event names.
"""

from __future__ import annotations

from prefect import flow
from prefect.logging import get_run_logger

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import InvalidInputError
from prefect_posthog.flows.blocks import load_credentials
from prefect_posthog.flows.key_slots import successor_label
from prefect_posthog.tasks import get_project_secret_api_key


@flow(name="posthog-follow-key-rotation", persist_result=False)
def follow_key_rotation(
    key_id: str,
    label: str,
    stored_in: str | None = None,
    credentials: PostHogCredentials | str = "posthog",
    project_id: int | None = None,
) -> str:
    """React to one rotated project secret API key (an example follower).

    Reads the key back to confirm it is the one the event named, and logs where its
    consumers now find the new value. The value itself is never read here: the event and
    this flow's parameters carry only the key's id, label and storage place.

    Args:
        key_id: The rotated key's id (from the event's `posthog.key-id` label).
        label: Its label (`posthog.label`).
        stored_in: Where the new value is stored (`posthog.stored-in`).
        credentials: PostHog credentials block, or its name.
        project_id: Override the block's project.

    Returns:
        The key's live mask, e.g. `phs_...a1b2`.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.flows.follow_rotation import follow_key_rotation
        from prefect_posthog.tasks import list_project_secret_api_keys

        @flow
        def on_rotation():
            credentials = PostHogCredentials.load("my-posthog")
            key = list_project_secret_api_keys(credentials)[0]
            # What the deployment trigger passes from the `rotated` event:
            mask = follow_key_rotation(key_id=key.id, label=key.label,
                                       stored_in=f"Secret block 'posthog-psak-{key.label}'",
                                       credentials=credentials)
            print(key.label, mask)

        on_rotation()
        ```
    """
    credentials = load_credentials(credentials)
    key = get_project_secret_api_key(credentials, key_id, project_id=project_id)
    # An overlap rotation announces its successor, labelled `<label>~next` until the old
    # key retires; consumers know it by the label.
    if key.label not in (label, successor_label(label)):
        raise InvalidInputError("label", f"key {key_id} is labelled {key.label!r} now, not "
                                f"{label!r}; it was relabelled after the rotation")
    get_run_logger().info("Key %s (%s) was rotated; consumers read the new value from %s",
                          label, key.mask_value, stored_in or "their own store")
    return key.mask_value or ""
