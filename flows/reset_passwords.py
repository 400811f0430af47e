"""Sharing-password reset for insights, session recordings and dashboards."""

from __future__ import annotations

import secrets

from prefect import flow, task
from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.system import Secret
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.logging import get_run_logger
from pydantic import SecretStr

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import (
    FeatureNotAvailableError,
    OutcomeUnknownError,
    PostHogClient,
    PostHogError,
    SharePasswordCreated,
)
from prefect_posthog.flows.blocks import load_credentials, load_notification, load_secret
from prefect_posthog.flows.models import (
    PasswordResetOutcome,
    PasswordResetReport,
    SharingTarget,
    block_name,
)
from prefect_posthog.flows.reporting import conclude, notify

NOTE_PREFIX = "prefect-posthog"


def _create_reconciled(posthog: PostHogClient, target: SharingTarget, password: SecretStr,
                       note: str) -> tuple[int, bool]:
    """Create the password; after a lost response, adopt the one carrying our note.

    The password is generated here, so a password found with this run's unique note is
    known to be ours and its plaintext is in hand: nothing needs creating twice.
    """
    try:
        created: SharePasswordCreated = posthog.create_sharing_password(
            target.resource, target.id, raw_password=password, note=note)
        return created.id, False
    except OutcomeUnknownError:
        config = posthog.get_sharing(target.resource, target.id)
        ours = [p.id for p in config.share_passwords if p.note == note]
        if ours:
            return ours[-1], True
        created = posthog.create_sharing_password(target.resource, target.id,
                                                  raw_password=password, note=note)
        return created.id, True


def _refresh_reconciled(posthog: PostHogClient, target: SharingTarget,
                        before: str | None) -> tuple[str | None, bool]:
    """Refresh the link; after a lost response, a changed token proves it happened."""
    try:
        return posthog.refresh_sharing(target.resource, target.id).access_token, False
    except OutcomeUnknownError:
        token = posthog.get_sharing(target.resource, target.id).access_token
        if token != before:
            return token, True
        return posthog.refresh_sharing(target.resource, target.id).access_token, True


@task(name="Reset one PostHog share password", cache_policy=NO_CACHE, persist_result=False,
      retries=0, task_run_name="reset-{target.resource}-{target.id}")
def reset_password(
    credentials: PostHogCredentials,
    target: SharingTarget,
    note: str,
    new_password: SecretStr | None,
    secret_block: str | None,
    refresh_link: bool = False,
    project_id: int | str | None = None,
) -> PasswordResetOutcome:
    """Turn password protection on, add the new password, remove the others, optionally
    rotate the link, and store the password. The password is never returned."""
    outcome = PasswordResetOutcome(resource=target.resource, id=target.id, status="failed")
    password = new_password or SecretStr(secrets.token_urlsafe(18))
    with credentials.get_client(project_id) as posthog:
        try:
            config = posthog.get_sharing(target.resource, target.id)
            if not config.password_required:
                config = posthog.update_sharing(target.resource, target.id,
                                                password_required=True)
            # New password first, so the share is never left without a working one.
            outcome.password_id, outcome.reconciled = _create_reconciled(
                posthog, target, password, note)
            for old in posthog.get_sharing(target.resource, target.id).share_passwords:
                if old.id != outcome.password_id:
                    posthog.delete_sharing_password(target.resource, target.id, old.id)
                    outcome.removed_passwords += 1
            token = posthog.get_sharing(target.resource, target.id).access_token
            if refresh_link:
                token, again = _refresh_reconciled(posthog, target, token)
                outcome.link_refreshed, outcome.reconciled = True, outcome.reconciled or again
                # Refresh copies passwords under new ids.
                current = posthog.get_sharing(target.resource, target.id).share_passwords
                outcome.password_id = next((p.id for p in current if p.note == note),
                                           outcome.password_id)
            outcome.share_url = f"{credentials.host}/shared/{token}"
        except FeatureNotAvailableError as exc:
            outcome.reason = (f"{exc} — password-protected sharing needs the organization's "
                              "Advanced Permissions feature")
            return outcome
        except PostHogError as exc:
            outcome.reason = str(exc)
            return outcome
    if secret_block:
        try:
            Secret(value=password).save(secret_block, overwrite=True, _sync=True)
            outcome.stored_in = f"Secret block '{secret_block}'"
        except Exception as exc:
            outcome.reason = (f"password set but storing it failed ({type(exc).__name__}); "
                              "run again to set a new one")
            return outcome
    outcome.status = "reset"
    return outcome


@flow(name="posthog-reset-sharing-passwords", persist_result=False)
def reset_sharing_passwords(
    credentials: PostHogCredentials | str,
    targets: list[SharingTarget],
    new_password: Secret | str | None = None,
    refresh_link: bool = False,
    secret_block_name_template: str | None = "posthog-share-{resource}-{id}",
    notification: NotificationBlock | str | None = None,
    include_password_in_notification: bool = False,
    dry_run: bool = False,
    project_id: int | None = None,
) -> PasswordResetReport:
    """Give shared insights, recordings or dashboards a new password and retire the old ones.

    For each target: turn password protection on if needed (a clear error when the
    organization lacks Advanced Permissions), create the new password first (generated, or
    taken from the ``new_password`` Secret block), deactivate every other password,
    optionally rotate the share link (the old link keeps working for 5 minutes), store the
    password in a Secret block and notify with the share link. A lost password-create
    response is reconciled by a note unique to this run; strays from crashed runs are
    removed on the next run.

    Args:
        credentials: PostHog credentials block (needs ``sharing_configuration:write``).
        targets: What to reset, e.g. ``[{"resource": "insight", "id": "42"}]``.
        new_password: A Secret block (or a Secret block's name) holding the password to
            set; else one is generated per target.
        refresh_link: Also rotate the share link's access token.
        secret_block_name_template: Where each password is stored; ``{resource}`` and
            ``{id}`` are filled in. ``None`` stores nothing.
        notification: Any Prefect notification block, or ``<block-type-slug>/<name>``.
        include_password_in_notification: Put the password itself in the notification
            (off by default: the message says where it is stored).
        dry_run: Show what would change, change nothing.
        project_id: Override the block's project.

    Returns:
        The report; it never contains a password.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.flows import SharingTarget, reset_sharing_passwords

        @flow
        def quarterly_reset():
            reset_sharing_passwords(
                PostHogCredentials.load("my-posthog"),
                targets=[SharingTarget(resource="insight", id="42")],
            )
        ```
    """
    logger = get_run_logger()
    credentials = load_credentials(credentials)
    notification = load_notification(notification)
    new_password = load_secret(new_password, "new_password")
    report = PasswordResetReport(dry_run=dry_run)
    run_id = str(get_run_context().flow_run.id)[:8]
    fixed = SecretStr(str(new_password.get())) if new_password is not None else None
    if fixed is not None and len(fixed.get_secret_value()) < 8:
        raise ValueError("new_password: the Secret block's value must be at least 8 "
                         "characters long")
    stored: dict[str, SecretStr] = {}
    for index, target in enumerate(targets):
        store_as = (block_name(secret_block_name_template, resource=target.resource,
                               id=target.id) if secret_block_name_template else None)
        if dry_run:
            with credentials.get_client(project_id) as posthog:
                config = posthog.get_sharing(target.resource, target.id)
            report.targets.append(PasswordResetOutcome(
                resource=target.resource, id=target.id, status="planned",
                removed_passwords=len(config.share_passwords), link_refreshed=refresh_link,
                stored_in=f"Secret block '{store_as}'" if store_as else None,
                reason=None if config.password_required else "password protection will be "
                "turned on"))
            continue
        note = f"{NOTE_PREFIX} run {run_id} #{index} {secrets.token_hex(4)}"
        outcome = reset_password(credentials, target, note, fixed, store_as,
                                 refresh_link=refresh_link, project_id=project_id)
        report.targets.append(outcome)
        if outcome.status == "reset" and store_as and include_password_in_notification:
            stored[store_as] = SecretStr(str(Secret.load(store_as, _sync=True).get()))
    done = [t for t in report.targets if t.status == "reset"]
    if done:
        lines = []
        for t in done:
            line = f"- {t.resource} {t.id}: {t.share_url} (password in {t.stored_in or 'nowhere'})"
            if include_password_in_notification and t.stored_in:
                block = t.stored_in.split("'")[1]
                line += f" password: {stored[block].get_secret_value()}"
            lines.append(line)
        report.notification_error = notify(
            notification, f"PostHog: {len(done)} share password(s) reset", "\n".join(lines))
        report.notified = notification is not None and report.notification_error is None
    failed = [t for t in report.targets if t.status == "failed"]
    logger.info("Password reset: %d reset, %d failed", len(done), len(failed))
    conclude(
        "posthog-password-reset", "PostHog sharing password reset"
        + (" (dry run)" if dry_run else ""),
        {"targets": len(targets), "reset": len(done), "failed": len(failed),
         "notified": report.notified, "notification error": report.notification_error or "-"},
        [t.model_dump(mode="json") for t in report.targets],
        failed=len(failed), noun="target", notification_error=report.notification_error)
    return report
