"""Sharing-password reset for insights, session recordings and dashboards.

The story of one run:

1. Validate, before any write: at least one target, no target twice, a Secret block name
   of its own for each, the new password's length; then prove the project and every target
   exist (one read each), and the notification block.
2. Take the project's lock (`project_lock`): one secret job per project at a time.
3. Per target (`reset_steps.reset_password`): the password is chosen here and **stored
   first**; then PostHog gets it, the other passwords are removed and the link optionally
   rotated. If PostHog never took it, everything is rolled back; once it has, the stored
   password is the working one whatever fails later, and the report says so.
4. Final check, after waiting out any late write: the Secret block still holds this run's
   password, it is the only active one (strays removed), and the live link is reported.
5. Announce (events, one notification with the links) and finish (the report).
"""

from __future__ import annotations

import secrets
from contextlib import nullcontext
from typing import Annotated

from prefect import flow
from prefect.blocks.system import Secret
from prefect.context import get_run_context
from prefect.logging import get_run_logger
from pydantic import Field, SecretStr

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import SECRETS, InvalidInputError, SharingConfiguration
from prefect_posthog.flows.blocks import (
    NotificationChoice,
    load_credentials,
    load_notification,
    load_secret,
)
from prefect_posthog.flows.events import password_reset_events, project_of
from prefect_posthog.flows.final_check import settle_and_confirm
from prefect_posthog.flows.models import (
    PasswordResetOutcome,
    PasswordResetReport,
    ResetStatus,
    SharingTarget,
    StoredPassword,
)
from prefect_posthog.flows.preflight import prove_project, settle_time
from prefect_posthog.flows.project_lock import (
    DEFAULT_LOCK_TIMEOUT_SECONDS,
    MAX_LOCK_TIMEOUT_SECONDS,
    lock_timeout,
    project_lock,
)
from prefect_posthog.flows.report_rows import reset_row, reset_summary
from prefect_posthog.flows.reporting import artifact_key, finish, notify
from prefect_posthog.flows.reset_steps import (
    Target,
    confirm_resets,
    read_targets,
    reset_password,
)
from prefect_posthog.flows.secret_store import name_blocks, stored_in

NOTE_PREFIX = "prefect-posthog"
STORED_WORKS = StoredPassword.WORKS
ROLLED_BACK = StoredPassword.ROLLED_BACK


def storage_names(targets: list[SharingTarget],
                  template: str | None) -> dict[Target, str | None]:
    """Each target's Secret block name; refuses an empty list, repeats and shared names."""
    if not targets:
        raise InvalidInputError("targets", "give at least one insight, session recording or "
                                "dashboard")
    idents = [(t.resource, t.id) for t in targets]
    repeated = next((i for n, i in enumerate(idents) if i in idents[:n]), None)
    if repeated:
        raise InvalidInputError("targets", f"{repeated[0]} {repeated[1]} is listed twice")
    return name_blocks({i: {"resource": i[0], "id": i[1]} for i in idents}, template, idents,
                       lambda i: f"{i[0]} {i[1]}", "use {resource} and {id} in the template")


def fixed_password(block: Secret | None) -> SecretStr | None:
    """The `new_password` block's value (at least 8 characters), if one was given."""
    if block is None:
        return None
    value = SecretStr(str(block.get()))
    SECRETS.add(value)
    if len(value.get_secret_value()) < 8:
        raise InvalidInputError("new_password", "the Secret block's value must be at least 8 "
                                "characters long")
    return value


def fresh_password() -> SecretStr:
    """A new password, known to the secret registry from the moment it exists."""
    value = SecretStr(secrets.token_urlsafe(18))
    SECRETS.add(value)
    return value


def lock_project(credentials: PostHogCredentials, project_id: int | None) -> int | str:
    """The project the lock is named by: its id (resolved from `@current` with a read)."""
    project = credentials.project(project_id)
    return project if isinstance(project, int) else prove_project(credentials, project_id).id


def _planned(target: SharingTarget, config: SharingConfiguration, block: str | None,
             refresh_link: bool) -> PasswordResetOutcome:
    return PasswordResetOutcome(
        resource=target.resource, id=target.id, status=ResetStatus.PLANNED,
        removed_passwords=len(config.share_passwords), link_refreshed=refresh_link,
        stored_in=stored_in(block), reason=None if config.password_required else
        "password protection will be turned on")


@flow(name="posthog-reset-sharing-passwords", persist_result=False)
def reset_sharing_passwords(
    credentials: PostHogCredentials | str,
    targets: Annotated[list[SharingTarget], Field(min_length=1)],
    new_password: Secret | str | None = None,
    refresh_link: bool = False,
    secret_block_name_template: str | None = "posthog-share-{resource}-{id}",
    notification: NotificationChoice | str | None = None,
    dry_run: bool = False,
    project_id: int | None = None,
    settle_seconds: float | None = None,
    lock_timeout_seconds: Annotated[float, Field(ge=0, le=MAX_LOCK_TIMEOUT_SECONDS)] = (
        DEFAULT_LOCK_TIMEOUT_SECONDS),
) -> PasswordResetReport:
    """Give shared insights, recordings or dashboards a new password and retire the old ones.

    Before any write, every target must exist, appear once and have a Secret block name of
    its own. For each target the password (generated, or taken from the `new_password`
    Secret block) is stored first, then password protection is turned on if needed (a clear
    error when the organization lacks Advanced Permissions), the password created in
    PostHog, every other password deactivated and, optionally, the share link rotated (the
    old link keeps working for 5 minutes). If PostHog never took the password the change is
    rolled back; once it has, the stored password is the working one and the report says
    so. A final check after any late write could land confirms the Secret block still holds
    the password, removes strays and reports the live link; only then is a target
    `reset`. A run killed at any step converges on the next run. One job per project runs
    at a time (the project's lock, shared with the key rotation). One notification carries
    the links.

    Args:
        credentials: PostHog credentials block, or its name (needs
            `sharing_configuration:write`; with no project id in the block, also
            `project:read`).
        targets: What to reset, e.g. `[{"resource": "insight", "id": "42"}]`; at least one.
        new_password: A Secret block (or a Secret block's name) holding the password to
            set; else one is generated per target.
        refresh_link: Also rotate the share link's access token.
        secret_block_name_template: Where each password is stored; `{resource}` and
            `{id}` are filled in. `None` stores nothing.
        notification: Any Prefect notification block, or `<block-type-slug>/<name>`;
            the message carries the links and where each password is stored, never a
            password.
        dry_run: Show what would change, change nothing.
        project_id: Override the block's project.
        settle_seconds: How long a write whose response was lost may take to land; waited
            before reconciling and before the final check. Default: twice the block's
            request timeout.
        lock_timeout_seconds: How long to wait for another run holding the project (0:
            try once).

    Returns:
        The report; it never contains a password.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.flows import SharingTarget, reset_sharing_passwords

        @flow
        def quarterly_reset():
            report = reset_sharing_passwords(
                PostHogCredentials.load("my-posthog"),
                targets=[SharingTarget(resource="insight", id="1")],
            )
            print([(share.id, share.status, share.share_url) for share in report.targets])

        quarterly_reset()
        ```
    """
    credentials = load_credentials(credentials)
    notification = load_notification(notification)
    fixed = fixed_password(load_secret(new_password, "new_password"))
    settle = settle_time(credentials, settle_seconds)
    timeout = lock_timeout(lock_timeout_seconds)
    names = storage_names(targets, secret_block_name_template)
    configs = read_targets(credentials, targets, project_id)
    report = PasswordResetReport(dry_run=dry_run)
    with nullcontext() if dry_run else project_lock(
            credentials.host, lock_project(credentials, project_id), timeout):
        if dry_run:
            report.targets = [_planned(t, configs[(t.resource, t.id)],
                                       names[(t.resource, t.id)], refresh_link) for t in targets]
        else:
            report.targets = reset_all(credentials, targets, names, fixed, refresh_link, settle,
                                       project_id)
    password_reset_events(project_of(credentials, project_id), report.targets, dry_run)
    done = [t for t in report.targets if t.status is ResetStatus.RESET]
    if done:
        lines = [f"- {t.resource} {t.id}: {t.share_url} (password in "
                 f"{t.stored_in or 'nowhere'})" for t in done]
        report.notification_error = notify(
            notification, f"PostHog: {len(done)} share password(s) reset", "\n".join(lines))
        report.notified = notification is not None and report.notification_error is None
    failed = [t for t in report.targets if t.status is ResetStatus.FAILED]
    get_run_logger().info("Password reset: %d reset, %d failed", len(done), len(failed))
    finish(artifact_key("posthog-password-reset", dry_run),
           "PostHog sharing password reset" + (" (dry run)" if dry_run else ""),
           reset_summary(report.targets, dry_run=dry_run, notified=report.notified,
                         notification_error=report.notification_error),
           [reset_row(t) for t in report.targets],
           failed=len(failed), noun="target", notification_error=report.notification_error)
    return report


def reset_all(credentials: PostHogCredentials, targets: list[SharingTarget],
              names: dict[Target, str | None], fixed: SecretStr | None, refresh_link: bool,
              settle: float, project_id: int | None) -> list[PasswordResetOutcome]:
    """Reset every target (a password and a note of this run each), then the final check."""
    run_id = str(get_run_context().flow_run.id)[:8]
    stored: dict[Target, tuple[str | None, SecretStr]] = {}
    outcomes = []
    for index, target in enumerate(targets):
        ident = (target.resource, target.id)
        stored[ident] = (names[ident], fixed or fresh_password())
        note = f"{NOTE_PREFIX} run {run_id} #{index} {secrets.token_hex(4)}"
        outcomes.append(reset_password(
            credentials, target, note, stored[ident][1], names[ident],
            refresh_link=refresh_link, settle_seconds=settle, project_id=project_id))
    return settle_and_confirm(
        outcomes, lambda current: confirm_resets(credentials, current, stored,
                                                 project_id=project_id),
        settle=settle, reconciled=lambda o: o.reconciled)
