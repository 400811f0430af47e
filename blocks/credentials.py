"""The `PostHogCredentials` block."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Literal
from urllib.parse import urlsplit

from prefect.blocks.abstract import CredentialsBlock
from pydantic import ConfigDict, Field, SecretStr, field_validator

from prefect_posthog.client import (
    DEFAULT_RATE_LIMIT,
    CaptureClient,
    InvalidInputError,
    PostHogClient,
    RetryPolicy,
    capture_host_for,
    check_personal_api_key,
    parse_rates,
)

POSTHOG_US = "https://us.posthog.com"
POSTHOG_EU = "https://eu.posthog.com"
# Enforced by the block form at save time (JSON schema); `_valid_url` says why in code.
HOST_PATTERN = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"


def _is_loopback(hostname: str) -> bool:
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _valid_url(field: str, value: str) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{field} {value!r} is not a URL; use e.g. {POSTHOG_US} or {POSTHOG_EU}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(f"{field} must use https (plain http is only allowed for loopback "
                         f"addresses); use https://{parts.netloc}")
    if parts.query or parts.fragment:
        raise ValueError(f"{field} must not contain a query string or fragment")
    return value


class PostHogCredentials(CredentialsBlock):
    """Credentials for PostHog's management API: host, personal API key and project.

    The personal API key needs the scopes of the tasks you run (e.g. `group:write` for
    group property updates, `project:write` for secret key rotation,
    `sharing_configuration:write` for sharing). `get_client` returns a typed
    `PostHogClient` that also works outside Prefect.

    Example:
        Load stored credentials and list groups through the typed client:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials

        @flow
        def company_keys() -> list[str]:
            credentials = PostHogCredentials.load("BLOCK_NAME")
            with credentials.get_client() as posthog:
                return [g.group_key for g in posthog.list_groups(group_type_index=0).results]

        print(company_keys())
        ```
    """

    # A rejected personal key must never be quoted back in a validation error.
    model_config = ConfigDict(hide_input_in_errors=True)

    _block_type_name = "PostHog Credentials"
    _block_type_slug = "posthog-credentials"
    # Square, served by GitHub from PostHog's own repository.
    _logo_url = ("https://raw.githubusercontent.com/PostHog/posthog/master/frontend/public/"
                 "favicon-192x192.png")
    _documentation_url = "https://github.com/prefect-posthog/prefect-posthog#getting-started"

    host: str = Field(
        default=POSTHOG_US,
        pattern=HOST_PATTERN,
        description=(
            "PostHog base URL: https://us.posthog.com (US Cloud), https://eu.posthog.com "
            "(EU Cloud) or your self-hosted URL; https is required except on loopback."
        ),
    )
    personal_api_key: SecretStr = Field(
        description="Personal API key (phx_...) with the scopes the tasks need.",
        title="Personal API key",
    )
    project_id: int | None = Field(
        default=None,
        ge=1,
        title="Project ID",
        description=(
            "Project id, from Project settings > Project ID (e.g. 12345). Set it for "
            "scheduled runs. Left empty, calls go to @current: the project the key's owner "
            "last opened in PostHog, which changes when they switch projects."
        ),
    )
    path_style: Literal["projects", "environments"] = Field(
        default="projects",
        description=(
            "URL prefix: projects (canonical, the successor) or environments, which PostHog "
            "has deprecated (sunset 2026-07-31; the client warns when PostHog says so)."
        ),
    )
    timeout_seconds: float = Field(
        default=30.0, gt=0, description="Read and write timeout of one request, in seconds."
    )
    rate_limit: str = Field(
        default=DEFAULT_RATE_LIMIT,
        title="Rate limit (empty = off)",
        description=(
            "Client-side budget of this key, as PostHog Cloud enforces it (e.g. "
            f"{DEFAULT_RATE_LIMIT}). Empty turns client-side limiting off: only for "
            "self-hosted servers without rate limits."
        ),
    )
    capture_host: str | None = Field(
        default=None,
        description=(
            "PostHog's ingestion host: where events are captured (bulk writes through "
            "ingestion) and where project secret keys are checked (the flags service); "
            "empty for the default (https://us.i.posthog.com or https://eu.i.posthog.com "
            "for PostHog Cloud, else the host)."
        ),
    )
    max_attempts: int = Field(
        default=5, ge=1, le=20,
        description="Attempts per request for transport errors, 408, 429 and 5xx.",
    )

    @field_validator("host", mode="before")
    @classmethod
    def _check_host(cls, value: object) -> object:
        # Before the pattern check, so Python callers get the reason, not the regex.
        return _valid_url("host", value) if isinstance(value, str) else value

    @field_validator("capture_host")
    @classmethod
    def _check_capture_host(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return _valid_url("capture_host", value)

    @field_validator("personal_api_key")
    @classmethod
    def _check_key(cls, value: SecretStr) -> SecretStr:
        try:
            return SecretStr(check_personal_api_key(value.get_secret_value()))
        except InvalidInputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("project_id", mode="before")
    @classmethod
    def _check_project(cls, value: object) -> object:
        # "@current" and digit strings from code or older saved blocks stay accepted.
        if isinstance(value, str):
            value = value.strip()
            if value in ("", "@current"):
                return None
            if value.isdigit():
                return int(value)
        if isinstance(value, bool) or not isinstance(value, int | None) or (
                isinstance(value, int) and value < 1):
            raise ValueError("project_id must be a positive integer (Project settings > "
                             "Project ID), or empty for @current")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        parse_rates(value)  # raises ValueError naming the bad part
        return value.strip()

    def project(self, override: int | str | None = None) -> int | str:
        """The project calls go to: the override, else the block's id, else `@current`."""
        return override if override is not None else (self.project_id or "@current")

    def get_capture_client(self, token: str) -> CaptureClient:
        """A client sending events with the project's capture token (`phc_...`).

        Args:
            token: The project token (see `PostHogClient.get_project`).

        Returns:
            A `CaptureClient`; use it as a context manager.
        """
        return CaptureClient(self.capture_host or capture_host_for(self.host), token,
                             timeout=self.timeout_seconds,
                             retry=RetryPolicy(max_attempts=self.max_attempts))

    def get_client(
        self,
        project_id: int | str | None = None,
        *,
        before_request: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> PostHogClient:
        """Return a typed client for these credentials.

        Args:
            project_id: Override the block's project for this client.
            before_request: Called before every request (e.g. a Prefect global
                concurrency limit's rate_limit).
            sleep: Sleep function used between retries (tests pass one that does not
                wait).

        Returns:
            A `PostHogClient`; use it as a context manager to close its connections.
        """
        return PostHogClient(
            self.host,
            self.personal_api_key,
            self.project(project_id),
            path_style=self.path_style,
            timeout=self.timeout_seconds,
            rate_limits=parse_rates(self.rate_limit),
            retry=RetryPolicy(max_attempts=self.max_attempts),
            before_request=before_request,
            sleep=sleep,
            ingestion_host=self.capture_host,
        )
