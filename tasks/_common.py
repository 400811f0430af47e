"""What every prefect-posthog task shares: caching, persistence and retry rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from prefect import Task, task
from prefect.cache_policies import NO_CACHE

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import (
    InvalidInputError,
    PostHogClient,
    PostHogTransportError,
    RateLimitedError,
    ServerError,
)

F = TypeVar("F", bound=Callable[..., Any])

# The client already retried with backoff and Retry-After; these task retries are the
# second line, for outages longer than the client's own attempts.
TASK_RETRIES = 2
TASK_RETRY_DELAYS = [10.0, 60.0]


def retry_transient(task: Task, task_run: Any, state: Any) -> bool:
    """Retry a task only when the failure was transient (transport, 408, 429, 5xx).

    Reads `state.data` (the raised exception) rather than `state.result()`, which
    never raises inside async tasks.
    """
    exc = state.data if isinstance(state.data, BaseException) else None
    return isinstance(exc, (PostHogTransportError, RateLimitedError, ServerError))


def api_task(name: str, *, idempotent: bool, secret: bool = False,
             run_name: str | None = None) -> Callable[[F], F]:
    """Decorate a thin wrapper over one client method.

    Args:
        name: Human readable task name shown in the Prefect UI.
        idempotent: Whether repeating the call is safe; only then task-level retries are
            enabled. PostHog's views decide it: a repeated create, roll, link refresh or
            password create acts twice (`posthog/api/project_secret_api_key.py`,
            `posthog/api/sharing.py`), a repeated delete answers 404. Non-idempotent calls
            are reconciled by their callers.
        secret: The result can carry a secret: never persist it.
        run_name: Task run name template over the task's arguments.
    """
    options: dict[str, Any] = {
        "name": name,
        "retries": TASK_RETRIES if idempotent else 0,
        "retry_delay_seconds": TASK_RETRY_DELAYS,
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": retry_transient,
        # Identical calls must reach PostHog every time (polling, read-after-write), and
        # input hashes mask SecretStr so different keys would collide.
        "cache_policy": NO_CACHE,
        "tags": ["posthog"],
    }
    if secret:
        options["persist_result"] = False
    if run_name:
        options["task_run_name"] = run_name
    return task(**options)  # type: ignore[return-value]


def client_for(credentials: PostHogCredentials, project_id: int | str | None) -> PostHogClient:
    """A client for the task's credentials, with the per-call project override."""
    if not isinstance(credentials, PostHogCredentials):
        raise InvalidInputError("credentials", "must be a PostHogCredentials block (e.g. "
                                "PostHogCredentials.load('my-posthog')), never a raw key")
    return credentials.get_client(project_id)
