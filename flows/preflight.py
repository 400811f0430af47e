"""Checks every job makes before its first write: the project answers, waits are sane."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import (
    InvalidInputError,
    NotFoundError,
    Project,
    UnexpectedResponseError,
)
from prefect_posthog.tasks import get_project

T = TypeVar("T")


def settle_time(credentials: PostHogCredentials, settle_seconds: float | None) -> float:
    """Seconds a write whose response was lost may still take to land on the server.

    By default twice the request timeout: a server still working on a request the client
    gave up on is itself bounded by timeouts of that order.
    """
    if settle_seconds is None:
        return 2 * credentials.timeout_seconds
    if settle_seconds < 0:
        raise InvalidInputError("settle_seconds", "must be 0 or more")
    return float(settle_seconds)


def project_or_fail(credentials: PostHogCredentials, project_id: int | str | None,
                    first_read: Callable[[], T]) -> T:
    """Run the job's first read, turning "no such project" into an error naming the project
    and host: a wrong project id or base URL must fail the job before any write, not turn
    into per-item "not found" outcomes.
    """
    try:
        return first_read()
    except (NotFoundError, UnexpectedResponseError) as exc:
        project = credentials.project(project_id)
        raise InvalidInputError(
            "project_id", f"project {project} was not found at {credentials.host} ({exc}); "
            "check the credentials block's host and project_id. Nothing was changed") from None


def prove_project(credentials: PostHogCredentials, project_id: int | str | None) -> Project:
    """The job's first read: the project itself (`project:read`), so a wrong project or
    host fails before any write, and `@current` resolves to the id the lock is named by."""
    return project_or_fail(credentials, project_id,
                           lambda: get_project(credentials, project_id=project_id))
