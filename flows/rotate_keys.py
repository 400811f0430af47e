"""Project secret API key rotation: roll, store, verify, notify — never expose the value."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from prefect import flow, task
from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.system import Secret
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from pydantic import SecretStr

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import (
    OutcomeUnknownError,
    PostHogClient,
    PostHogError,
    ProjectSecretAPIKey,
)
from prefect_posthog.flows.blocks import load_credentials, load_notification
from prefect_posthog.flows.models import (
    KeyRotationOutcome,
    KeySelector,
    RotationReport,
    block_name,
)
from prefect_posthog.flows.reporting import conclude, notify
from prefect_posthog.tasks import list_project_secret_api_keys

StoreCallback = Callable[[ProjectSecretAPIKey, SecretStr], str]
"""``store(key, value) -> location``: put a rolled value where consumers read it."""

MAX_ROLL_ATTEMPTS = 3
CHECK_SCOPE = "feature_flag:read"


def select_keys(keys: list[ProjectSecretAPIKey], selector: KeySelector,
                now: datetime | None = None) -> list[ProjectSecretAPIKey]:
    """The keys matching any criterion of the selector."""
    now = now or datetime.now(timezone.utc)
    chosen = []
    for key in keys:
        age_from = key.last_rolled_at or key.created_at
        old = (selector.older_than_days is not None and age_from is not None
               and now - age_from > timedelta(days=selector.older_than_days))
        if (selector.all_keys or key.id in selector.ids or key.label in selector.labels or old
                or (selector.label_pattern and fnmatch.fnmatchcase(key.label,
                                                                   selector.label_pattern))):
            chosen.append(key)
    return chosen


def _roll_reconciled(posthog: PostHogClient, key: ProjectSecretAPIKey) -> tuple[
        ProjectSecretAPIKey, bool]:
    """Roll once, or — when the response was lost — deliberately until a value is in hand.

    A lost roll response leaves a new value on the server that nobody has, so the old one
    is dead and the new one unknown. ``last_rolled_at`` tells whether the lost roll
    happened; either way the only way to a usable value is one more roll, made knowingly.
    """
    reconciled = False
    for _ in range(MAX_ROLL_ATTEMPTS):
        try:
            return posthog.roll_project_secret_api_key(key.id), reconciled
        except OutcomeUnknownError:
            reconciled = True
            current = posthog.get_project_secret_api_key(key.id)
            happened = current.last_rolled_at != key.last_rolled_at
            get_run_logger().warning(
                "Roll response for key %s was lost (%s); rolling again to obtain a usable "
                "value", key.label, "the roll happened" if happened else "no roll recorded")
            key = current
    raise OutcomeUnknownError("roll_project_secret_api_key",
                              f"{MAX_ROLL_ATTEMPTS} roll responses lost")


def _verify(posthog: PostHogClient, new: SecretStr, old: SecretStr | None,
            secret_block: str | None, outcome: KeyRotationOutcome) -> list[str]:
    """Check the new value works, the old one is dead and the stored one is the new one."""
    problems = []
    outcome.new_value_works = posthog.check_project_secret_api_key(new)
    if not outcome.new_value_works:
        problems.append("new value does not authenticate")
    if old is not None:
        outcome.old_value_revoked = not posthog.check_project_secret_api_key(old)
        if not outcome.old_value_revoked:
            problems.append("old value still authenticates")
    if secret_block and Secret.load(secret_block, _sync=True).get() != new.get_secret_value():
        problems.append("stored value differs from the rolled one")
    return problems


@task(name="Rotate one PostHog project secret API key", cache_policy=NO_CACHE,
      persist_result=False, retries=0, task_run_name="rotate-{key.label}")
def rotate_key(
    credentials: PostHogCredentials,
    key: ProjectSecretAPIKey,
    secret_block: str | None,
    store: StoreCallback | None = None,
    verify: bool = True,
    project_id: int | str | None = None,
) -> KeyRotationOutcome:
    """Roll one key, store the new value, check it works and the old one does not.

    The plaintext never leaves this task: it is returned to nobody, and the task result
    (an outcome without the value) is not persisted either.
    """
    logger = get_run_logger()
    outcome = KeyRotationOutcome(id=key.id, label=key.label, status="failed")
    old_value: SecretStr | None = None
    if secret_block:
        try:
            old_value = SecretStr(str(Secret.load(secret_block, _sync=True).get()))
        except (ValueError, RuntimeError):
            old_value = None  # first rotation into this block
    with credentials.get_client(project_id) as posthog:
        try:
            rolled, outcome.reconciled = _roll_reconciled(posthog, key)
        except PostHogError as exc:
            outcome.reason = f"roll failed: {exc}"
            return outcome
        if rolled.value is None:
            outcome.reason = "PostHog's roll response carried no value; run again"
            return outcome
        outcome.mask_value, outcome.rolled_at = rolled.mask_value, rolled.last_rolled_at
        try:
            if store is not None:
                outcome.stored_in = store(rolled, rolled.value)
            elif secret_block:
                Secret(value=rolled.value).save(secret_block, overwrite=True, _sync=True)
                outcome.stored_in = f"Secret block '{secret_block}'"
        except Exception as exc:
            outcome.reason = (f"rolled but storing the new value failed ({type(exc).__name__}); "
                              "consumers still hold the old, now revoked value: run again")
            return outcome
        if verify and CHECK_SCOPE not in rolled.scopes:
            # PostHog checks a project secret key only through flag local evaluation.
            outcome.reason = f"rotated and stored, not verified: the key lacks {CHECK_SCOPE}"
        elif verify:
            try:
                problems = _verify(posthog, rolled.value, old_value,
                                   secret_block if store is None else None, outcome)
            except PostHogError as exc:
                problems = [f"could not run ({exc})"]
            if problems:
                outcome.reason = "verification failed: " + ", ".join(problems)
                return outcome
    outcome.status = "rotated"
    logger.info("Rotated key %s (%s), stored in %s", key.label, outcome.mask_value,
                outcome.stored_in or "nowhere")
    return outcome


@flow(name="posthog-rotate-project-secret-api-keys", persist_result=False)
def rotate_project_secret_api_keys(
    credentials: PostHogCredentials | str,
    selector: KeySelector,
    secret_block_name_template: str | None = "posthog-psak-{label}",
    notification: NotificationBlock | str | None = None,
    verify: bool = True,
    dry_run: bool = False,
    project_id: int | None = None,
    store: StoreCallback | None = None,
) -> RotationReport:
    """Roll project secret API keys, store each new value where consumers read it, verify it,
    and notify — without the value ever reaching a log, a result, an artifact or a message.

    For each selected key: roll it (a lost response is reconciled with ``last_rolled_at``
    and one deliberate roll more), store the new value in a Prefect ``Secret`` block named
    by the template (or hand it to ``store``), check that the new value authenticates and
    the previously stored one no longer does, then send one notification with label, mask,
    time and storage place. Notification failures fail the run after the report is written.

    Args:
        credentials: PostHog credentials block (needs ``project:write``, project admin).
        selector: Which keys: ids, labels, a label pattern, age, or all.
        secret_block_name_template: Secret block name per key; ``{label}`` and ``{id}`` are
            filled in (slugified). ``None`` with no ``store`` keeps the value nowhere.
        notification: Any Prefect notification block (Slack, Teams, custom webhook...),
            or ``<block-type-slug>/<name>`` of a saved one.
        verify: Check the new and old values against PostHog after rolling.
        dry_run: List what would be rolled, change nothing.
        project_id: Override the block's project.
        store: In pipelines, a callable ``store(key, value) -> location`` used instead of
            a Secret block.

    Returns:
        The report; it never contains a key value.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.flows import KeySelector, rotate_project_secret_api_keys

        @flow
        def monthly_rotation():
            rotate_project_secret_api_keys(
                PostHogCredentials.load("my-posthog"),
                selector=KeySelector(older_than_days=30),
            )
        ```
    """
    logger = get_run_logger()
    credentials = load_credentials(credentials)
    notification = load_notification(notification)
    keys = select_keys(list_project_secret_api_keys(credentials, project_id=project_id),
                       selector)
    report = RotationReport(dry_run=dry_run)
    logger.info("%d key(s) selected%s", len(keys), " (dry run)" if dry_run else "")
    for key in keys:
        target = (block_name(secret_block_name_template, label=key.label, id=key.id)
                  if secret_block_name_template and store is None else None)
        if dry_run:
            report.outcomes.append(KeyRotationOutcome(
                id=key.id, label=key.label, status="planned", mask_value=key.mask_value,
                stored_in=f"Secret block '{target}'" if target else None))
            continue
        report.outcomes.append(rotate_key(credentials, key, target, store=store, verify=verify,
                                      project_id=project_id))
    rotated = [k for k in report.outcomes if k.status == "rotated"]
    if rotated and not dry_run:
        lines = [f"- {k.label} ({k.mask_value}) rolled at {k.rolled_at:%Y-%m-%d %H:%M:%S} UTC, "
                 f"stored in {k.stored_in or 'nowhere'}" for k in rotated]
        report.notification_error = notify(
            notification, f"PostHog: {len(rotated)} project secret API key(s) rotated",
            "\n".join(lines))
        report.notified = notification is not None and report.notification_error is None
    failed = [k for k in report.outcomes if k.status == "failed"]
    conclude(
        "posthog-key-rotation", "PostHog project secret API key rotation"
        + (" (dry run)" if dry_run else ""),
        {"selected": len(keys), "rotated": len(rotated), "failed": len(failed),
         "notified": report.notified, "notification error": report.notification_error or "-"},
        [k.model_dump(mode="json") for k in report.outcomes],
        failed=len(failed), noun="key", notification_error=report.notification_error)
    return report
