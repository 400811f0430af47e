"""`PostHogClient`: every endpoint of the slice, one retry policy, one rate limiter."""

from __future__ import annotations

from prefect_posthog.client._groups import GroupsClient
from prefect_posthog.client._project_secret_api_keys import ProjectSecretAPIKeysClient
from prefect_posthog.client._sharing import SharingClient


class PostHogClient(GroupsClient, SharingClient, ProjectSecretAPIKeysClient):
    """Typed client for PostHog's groups, sharing and project secret API key endpoints.

    One method per endpoint, named as the task and the emulator handler of that endpoint
    (`list_groups`, `roll_project_secret_api_key`, ...). Every request goes through one
    loop: the retry policy (transport errors, 408, 429 and 5xx with backoff; a
    non-idempotent call is never repeated after a failure that may have applied it) and
    the rate limiter shared by every client of the same key and host in the process. Works
    without Prefect.

    Args:
        host: PostHog base URL, e.g. ``https://us.posthog.com`` or ``https://eu.posthog.com``.
        personal_api_key: A personal API key (``phx_...``), sent only as a Bearer header.
        project_id: Project (team) id, or ``"@current"``.
        path_style: ``"projects"`` (canonical) or ``"environments"`` (deprecated by PostHog,
            sunset 2026-07-31; the client warns once when PostHog says so).
        timeout: Read/write timeout in seconds.
        connect_timeout: Connect timeout in seconds.
        rate_limits: Windows the client keeps the key under; ``()`` disables the limiter.
            Clients of one key and host in one process share one limiter.
        retry: The retry policy.
        before_request: Called before every request (e.g. a Prefect global concurrency
            limit's ``rate_limit``), to share a budget across processes.
        transport: Optional httpx transport (tests).
        sleep: Sleep function used between retries (tests pass one that does not wait).
        ingestion_host: Where PostHog's flags service answers, for the key check: Cloud's
            ``us.i.posthog.com``/``eu.i.posthog.com``, else the host, unless given (the
            block's ``capture_host``).

    Examples:
        ```python
        from prefect_posthog.client import PostHogClient

        with PostHogClient("https://us.posthog.com", "phx_...", project_id=12345) as posthog:
            for group in posthog.iter_groups(group_type_index=0):
                print(group.group_key, group.group_properties)
            posthog.update_group_property(0, "acme", "plan", "enterprise")
        ```
    """
