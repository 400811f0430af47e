"""Sharing-password reset for insights, session recordings and dashboards.

The story of one run:

1. Preflight, before any write: at least one target, no target twice, a Secret block name of
   its own for each, the project and every target exist, the notification block exists.
2. Per target: the password is chosen here and **stored first**; then password protection
   is turned on, the password is created in PostHog (a lost create is found by this run's
   unique note), the other passwords are removed and the link optionally rotated. If
   PostHog never took the password, everything is rolled back; once it has, the stored
   password is the working one whatever fails later, and the report says so.
3. Final check, after waiting out any late write: the only active password is this run's,
   strays (late duplicates, old passwords) are removed, and the live link is reported.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated

from prefect import flow, task
from prefect.blocks.system import Secret
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.logging import get_run_logger
from pydantic import Field, SecretStr

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import (
    SECRETS,
    FeatureNotAvailableError,
    InvalidInputError,
    NotFoundError,
    OutcomeUnknownError,
    PostHogClient,
    PostHogError,
    ProjectNotFoundError,
    SharingConfiguration,
    UnexpectedResponseError,
)
from prefect_posthog.flows.blocks import (
    NotificationChoice,
    load_credentials,
    load_notification,
    load_secret,
)
from prefect_posthog.flows.events import password_reset_events, project_of
from prefect_posthog.flows.models import (
    PasswordResetOutcome,
    PasswordResetReport,
    SharingTarget,
    block_name,
)
from prefect_posthog.flows.preflight import project_or_fail, settle_time
from prefect_posthog.flows.report_rows import reset_row, reset_summary
from prefect_posthog.flows.reporting import artifact_key, finish, notify

NOTE_PREFIX = "prefect-posthog"
MAX_CREATES = 3
STORED_WORKS = "the stored password is the working one"
ROLLED_BACK = "rolled back: the share and the stored password are as before"
_UNKNOWN = (OutcomeUnknownError, UnexpectedResponseError)


def _create_reconciled(posthog: PostHogClient, target: SharingTarget, password: SecretStr,
                       note: str, settle_seconds: float) -> tuple[int, bool]:
    """Create the password; after an unknown outcome, wait for a late landing and adopt the
    password carrying this run's note (same value: it was chosen here), else create again.
    """
    reconciled = False
    for _ in range(MAX_CREATES):
        try:
            created = posthog.create_sharing_password(target.resource, target.id,
                                                      raw_password=password, note=note)
            return created.id, reconciled
        except _UNKNOWN:
            reconciled = True
            time.sleep(settle_seconds)
            ours = [p.id for p in posthog.get_sharing(target.resource, target.id).share_passwords
                    if p.note == note]
            if ours:
                return ours[0], True
    raise OutcomeUnknownError("create_sharing_password", f"{MAX_CREATES} creations unconfirmed")


def _refresh_reconciled(posthog: PostHogClient, target: SharingTarget, before: str | None,
                        settle_seconds: float) -> bool:
    """Rotate the link; after an unknown outcome, a changed token proves it happened."""
    try:
        posthog.refresh_sharing(target.resource, target.id)
        return False
    except _UNKNOWN:
        time.sleep(settle_seconds)
        if posthog.get_sharing(target.resource, target.id).access_token == before:
            posthog.refresh_sharing(target.resource, target.id)
        return True


def _save(block: str, value: SecretStr | None) -> None:
    """Store `value` in the Secret block; `None` removes a block this run created."""
    if value is not None:
        Secret(value=value).save(block, overwrite=True, _sync=True)
    elif _previous(block) is not None:
        Secret.delete(block, _sync=True)


def _previous(block: str | None) -> SecretStr | None:
    if not block:
        return None
    try:
        value = SecretStr(str(Secret.load(block, _sync=True).get()))
    except (ValueError, RuntimeError):
        return None
    SECRETS.add(value)
    return value


@task(name="Reset one PostHog share password", cache_policy=NO_CACHE, persist_result=False,
      retries=0, task_run_name="reset-{target.resource}-{target.id}")
def reset_password(
    credentials: PostHogCredentials,
    target: SharingTarget,
    note: str,
    new_password: SecretStr | None,
    secret_block: str | None,
    refresh_link: bool = False,
    settle_seconds: float = 0.0,
    project_id: int | str | None = None,
) -> PasswordResetOutcome:
    """Store the new password, then give it to PostHog, remove the others and optionally
    rotate the link. The password is never returned."""
    outcome = PasswordResetOutcome(resource=target.resource, id=target.id, status="failed",
                                   note=note)
    password = new_password or SecretStr(secrets.token_urlsafe(18))
    SECRETS.add(password)  # masked in any text from the moment it exists
    previous = _previous(secret_block)
    if secret_block:
        try:
            _save(secret_block, password)
        except Exception as exc:  # storage failure: nothing was changed in PostHog yet
            outcome.reason = f"storing the new password failed ({type(exc).__name__})"
            outcome.stored_secret = "unchanged: nothing was changed"
            return outcome
        outcome.stored_in = f"Secret block '{secret_block}'"
    with credentials.get_client(project_id) as posthog:
        turned_on = False
        try:
            config = posthog.get_sharing(target.resource, target.id)
            if not config.password_required:
                posthog.update_sharing(target.resource, target.id, password_required=True)
                turned_on = True
            outcome.password_id, outcome.reconciled = _create_reconciled(
                posthog, target, password, note, settle_seconds)
        except PostHogError as exc:
            outcome.reason = str(exc) + (
                " — password-protected sharing needs the organization's Advanced Permissions "
                "feature" if isinstance(exc, FeatureNotAvailableError) else "")
            outcome.stored_secret = _roll_back(posthog, target, secret_block, previous,
                                               turned_on)
            outcome.stored_in = None
            return outcome
        # PostHog holds the new password and the store has it: it is the working one now.
        try:
            for old in posthog.get_sharing(target.resource, target.id).share_passwords:
                if old.note != note:
                    posthog.delete_sharing_password(target.resource, target.id, old.id)
                    outcome.removed_passwords += 1
            if refresh_link:
                before = posthog.get_sharing(target.resource, target.id).access_token
                again = _refresh_reconciled(posthog, target, before, settle_seconds)
                outcome.link_refreshed = True
                outcome.reconciled = outcome.reconciled or again
        except PostHogError as exc:
            outcome.reason = f"new password set and stored, then: {exc}"
            outcome.stored_secret = STORED_WORKS
            return outcome
    if secret_block and _previous(secret_block) != password:
        # Something else wrote the block during the run: what consumers read is not live.
        outcome.reason = (f"Secret block '{secret_block}' was overwritten during the run and "
                          "no longer holds the live password: run again")
        outcome.stored_secret = "the stored password is not the working one"
        return outcome
    outcome.status = "reset"  # provisional: the flow's final check decides
    return outcome


def _roll_back(posthog: PostHogClient, target: SharingTarget, block: str | None,
               previous: SecretStr | None, turned_on: bool) -> str:
    """Undo a reset PostHog never took: the share's protection flag, then the stored value."""
    problems = []
    if turned_on:
        try:
            posthog.update_sharing(target.resource, target.id, password_required=False)
        except PostHogError as exc:
            problems.append(f"password protection stays on ({type(exc).__name__})")
    if block:
        try:
            _save(block, previous)
        except Exception as exc:  # report, never raise with text
            problems.append(f"the stored password could not be restored ({type(exc).__name__})")
    return ROLLED_BACK if not problems else "rollback incomplete: " + "; ".join(problems)


@task(name="Check reset PostHog share passwords", cache_policy=NO_CACHE, retries=0)
def confirm_resets(
    credentials: PostHogCredentials,
    outcomes: list[PasswordResetOutcome],
    project_id: int | str | None = None,
) -> list[PasswordResetOutcome]:
    """The final check, read after any late write: protection is on, this run's password is
    the only active one (late duplicates and other passwords are removed until that holds)
    and `share_url` is the live link."""
    result = []
    with credentials.get_client(project_id) as posthog:
        for outcome in outcomes:
            outcome = outcome.model_copy()
            result.append(outcome)
            if outcome.status != "reset":
                continue
            try:
                _converge(posthog, outcome, credentials.host)
            except PostHogError as exc:
                outcome.status, outcome.reason = "failed", f"final check failed: {exc}"
                outcome.stored_secret = STORED_WORKS
    return result


def _converge(posthog: PostHogClient, outcome: PasswordResetOutcome, host: str) -> None:
    for _ in range(3):
        config = posthog.get_sharing(outcome.resource, outcome.id)
        ours = [p for p in config.share_passwords if p.note == outcome.note]
        if not config.password_required or not ours:
            outcome.status = "failed"
            outcome.reason = ("the new password is no longer active" if not ours else
                              "password protection was turned off")
            return
        outcome.password_id = ours[0].id
        strays = [p for p in config.share_passwords if p.id != outcome.password_id]
        if not strays:
            outcome.share_url = f"{host}/shared/{config.access_token}"
            return
        for stray in strays:
            posthog.delete_sharing_password(outcome.resource, outcome.id, stray.id)
            if stray.note != outcome.note:  # a late copy of ours is not an old password
                outcome.removed_passwords += 1
    outcome.status, outcome.reason = "failed", "passwords kept appearing; run again"


def _preflight(credentials: PostHogCredentials, targets: list[SharingTarget],
               project_id: int | None) -> dict[tuple[str, str], SharingConfiguration]:
    """Read every target's sharing once: the project and every target must exist."""
    found, missing = {}, []
    with credentials.get_client(project_id) as posthog:

        def read(target: SharingTarget) -> SharingConfiguration | None:
            try:
                return posthog.get_sharing(target.resource, target.id)
            except ProjectNotFoundError:
                raise
            except NotFoundError as exc:
                if exc.type is None:  # not PostHog's error shape: the host is wrong
                    raise
                return None  # "Insight not found." and the like

        for target in targets:
            config = project_or_fail(credentials, project_id, lambda t=target: read(t))
            if config is None:
                missing.append(f"{target.resource} {target.id}")
            else:
                found[(target.resource, target.id)] = config
    if missing:
        raise InvalidInputError("targets", "not found in the project: " + ", ".join(missing)
                                + ". Nothing was changed")
    return found


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
) -> PasswordResetReport:
    """Give shared insights, recordings or dashboards a new password and retire the old ones.

    Before any write, every target must exist, appear once and have a Secret block name of
    its own. For each target the password (generated, or taken from the `new_password`
    Secret block) is stored first, then password protection is turned on if needed (a clear
    error when the organization lacks Advanced Permissions), the password created in
    PostHog, every other password deactivated and, optionally, the share link rotated (the
    old link keeps working for 5 minutes). If PostHog never took the password the change is
    rolled back; once it has, the stored password is the working one and the report says
    so. A final check after any late write could land removes strays and reports the live
    link; only then is a target `reset`. One notification carries the links.

    Args:
        credentials: PostHog credentials block, or its name (needs
            `sharing_configuration:write`).
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
    settle = settle_time(credentials, settle_seconds)
    fixed = SecretStr(str(new_password.get())) if new_password is not None else None
    if fixed is not None and len(fixed.get_secret_value()) < 8:
        raise InvalidInputError("new_password", "the Secret block's value must be at least 8 "
                                "characters long")
    names = _storage_names(targets, secret_block_name_template)
    configs = _preflight(credentials, targets, project_id)
    report = PasswordResetReport(dry_run=dry_run)
    run_id = str(get_run_context().flow_run.id)[:8]
    for index, target in enumerate(targets):
        store_as = names[(target.resource, target.id)]
        if dry_run:
            config = configs[(target.resource, target.id)]
            report.targets.append(PasswordResetOutcome(
                resource=target.resource, id=target.id, status="planned",
                removed_passwords=len(config.share_passwords), link_refreshed=refresh_link,
                stored_in=f"Secret block '{store_as}'" if store_as else None,
                reason=None if config.password_required else "password protection will be "
                "turned on"))
            continue
        note = f"{NOTE_PREFIX} run {run_id} #{index} {secrets.token_hex(4)}"
        report.targets.append(reset_password(
            credentials, target, note, fixed, store_as, refresh_link=refresh_link,
            settle_seconds=settle, project_id=project_id))
    if not dry_run:
        if settle and any(t.reconciled for t in report.targets):
            time.sleep(settle)  # let any write the client gave up on land before checking
        report.targets = confirm_resets(credentials, report.targets, project_id=project_id)
    password_reset_events(project_of(credentials, project_id), report.targets, dry_run)
    done = [t for t in report.targets if t.status == "reset"]
    if done:
        lines = [f"- {t.resource} {t.id}: {t.share_url} (password in "
                 f"{t.stored_in or 'nowhere'})" for t in done]
        report.notification_error = notify(
            notification, f"PostHog: {len(done)} share password(s) reset", "\n".join(lines))
        report.notified = notification is not None and report.notification_error is None
    failed = [t for t in report.targets if t.status == "failed"]
    logger.info("Password reset: %d reset, %d failed", len(done), len(failed))
    finish(
        artifact_key("posthog-password-reset", dry_run),
        "PostHog sharing password reset" + (" (dry run)" if dry_run else ""),
        reset_summary(report.targets, dry_run=dry_run, notified=report.notified,
                      notification_error=report.notification_error),
        [reset_row(t) for t in report.targets],
        failed=len(failed), noun="target", notification_error=report.notification_error)
    return report


def _storage_names(targets: list[SharingTarget],
                   template: str | None) -> dict[tuple[str, str], str | None]:
    """Each target's Secret block name; refuses an empty list, repeats and shared names."""
    if not targets:
        raise InvalidInputError("targets", "give at least one insight, session recording or "
                                "dashboard")
    names: dict[tuple[str, str], str | None] = {}
    by_name: dict[str, tuple[str, str]] = {}
    for target in targets:
        ident = (target.resource, target.id)
        if ident in names:
            raise InvalidInputError("targets", f"{target.resource} {target.id} is listed twice")
        name = block_name(template, resource=target.resource, id=target.id) if template else None
        if name is not None and name in by_name:
            other = by_name[name]
            raise InvalidInputError(
                "secret_block_name_template", f"{other[0]} {other[1]} and {target.resource} "
                f"{target.id} would both be stored in Secret block '{name}'; use {{resource}} "
                "and {id} in the template. Nothing was changed")
        names[ident] = name
        if name is not None:
            by_name[name] = ident
    return names
