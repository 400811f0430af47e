"""Project secret API key rotation that never leaves a consumer with a dead key.

The story of one run:

1. Validate the parameters, then prove the project (its first read), before any write.
2. Take the project's lock (`project_lock`): one secret job per project at a time.
3. Choose (`key_plan`): every key the selector names is checked for drift — a Secret block
   holding a value that is not the live one (rolled elsewhere, or a run stopped between a
   write and its store) is repaired, whatever the key's age; keys that also meet the age
   criterion are rotated; overlaps in progress are carried on or retired.
4. Run (`key_run`, `key_writes`): each new value is stored where consumers read it the
   moment PostHog shows it, then read back; a write whose outcome was lost is reconciled.
5. Final check (`key_confirm`), after any late write could land: only a key whose stored
   value is live (and authenticates, where PostHog can check it) is `rotated`, `repaired`
   or `retired`; a key changed again is written again and checked again.
6. Announce (events, one notification) and finish (the report; failed if any key failed
   or an overlap is overdue).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Annotated

from prefect import flow
from prefect.blocks.abstract import NotificationBlock
from prefect.logging import get_run_logger
from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.flows.blocks import NotificationChoice, load_credentials, load_notification
from prefect_posthog.flows.events import key_rotation_events, project_of
from prefect_posthog.flows.key_plan import plan_rotation, rotation_options
from prefect_posthog.flows.key_run import run_steps
from prefect_posthog.flows.key_writes import StoreCallback
from prefect_posthog.flows.models import KeySelector, KeyStatus, RotationReport, Strategy
from prefect_posthog.flows.preflight import prove_project, settle_time
from prefect_posthog.flows.project_lock import (
    DEFAULT_LOCK_TIMEOUT_SECONDS,
    MAX_LOCK_TIMEOUT_SECONDS,
    lock_timeout,
    project_lock,
)
from prefect_posthog.flows.report_rows import rotation_notice, rotation_row, rotation_summary
from prefect_posthog.flows.reporting import artifact_key, finish, notify

UNHEALTHY = (KeyStatus.FAILED, KeyStatus.OVERDUE)


def announce(credentials: PostHogCredentials, project_id: int | None, report: RotationReport,
             notification: NotificationBlock | None) -> None:
    """One event per key that changed or needs attention, one notification (no values)."""
    key_rotation_events(project_of(credentials, project_id), report.outcomes, report.dry_run)
    notice = None if report.dry_run else rotation_notice(report.outcomes)
    if notice is not None:
        report.notification_error = notify(notification, *notice)
        report.notified = notification is not None and report.notification_error is None


@flow(name="posthog-rotate-project-secret-api-keys", persist_result=False)
# A flow's parameters are its Run form in the Prefect UI: one field each, not an object.
def rotate_project_secret_api_keys(  # noqa: PLR0913
    credentials: PostHogCredentials | str,
    selector: KeySelector,
    secret_block_name_template: str | None = "posthog-psak-{label}",
    notification: NotificationChoice | str | None = None,
    verify: bool = True,
    dry_run: bool = False,
    project_id: int | None = None,
    settle_seconds: float | None = None,
    strategy: Strategy = "roll",
    old_key_idle_hours: Annotated[float, Field(ge=1)] = 2.0,
    retire_deadline_hours: Annotated[float, Field(ge=2)] = 168.0,
    lock_timeout_seconds: Annotated[float, Field(ge=0, le=MAX_LOCK_TIMEOUT_SECONDS)] = (
        DEFAULT_LOCK_TIMEOUT_SECONDS),
    store: SkipJsonSchema[StoreCallback | None] = None,
) -> RotationReport:
    """Rotate project secret API keys, store each new value where consumers read it, check
    the stored value is the live one, repair keys whose stored value is dead, and notify —
    without a value ever reaching a log, a result, an artifact or a message.

    `strategy="roll"` (the default, and the right answer to a leak) gives each key a new
    value at once: the old one dies, so consumers fail until they reload the Secret block.
    `strategy="overlap"` swaps with no outage: it creates a successor key (labelled
    `<label>~next`, same scopes), stores it in the key's Secret block and leaves the old
    key working; a later run retires the old key once PostHog's `last_used_at` shows
    consumers use the successor and nobody used the old key for `old_key_idle_hours`, then
    gives the successor the original label. Past `retire_deadline_hours` it reports
    `overdue` (and notifies) instead of deleting a key still in use.

    Every run also repairs drift among the keys the selector names (ids, labels, pattern;
    age aside): a Secret block holding a dead value (the key rolled by an admin, by
    PostHog's leak scanning, or a run killed between a roll and its store) is replaced and
    reported `repaired`. Only one job per project runs at a time: a second run waits up to
    `lock_timeout_seconds`, then fails naming the run that holds the project.

    Args:
        credentials: PostHog credentials block, or its name (needs `project:read`,
            `project:write` and project admin rights).
        selector: Which keys; criteria narrow (a key must meet every one given).
        secret_block_name_template: Secret block name per key; `{label}` and `{id}` are
            filled in (slugified; `overlap` needs `{label}` alone). `None` with no `store`
            keeps the value nowhere.
        notification: Any Prefect notification block (Slack, Teams, custom webhook...),
            or `<block-type-slug>/<name>` of a saved one.
        verify: Check stored values authenticate (and rolled-away ones no longer do).
        dry_run: List what would be done and where values would be stored; change nothing.
        project_id: Override the block's project.
        settle_seconds: How long a write whose response was lost may take to land; waited
            before reconciling and before the final check. Default: twice the block's
            request timeout.
        strategy: `roll` or `overlap` (see above).
        old_key_idle_hours: Overlap: how long nobody may have used the old key before it
            is retired (at least 1; PostHog stamps use at most hourly, so keep a margin).
        retire_deadline_hours: Overlap: after this long since the successor was stored, a
            still-used old key is reported `overdue` (default 7 days).
        lock_timeout_seconds: How long to wait for another run holding the project (0:
            try once).
        store: In pipelines, a callable `store(key, value) -> location` used instead of
            a Secret block (`roll` only; drift cannot be checked then).

    Returns:
        The report; it never contains a key value.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.flows import KeySelector, rotate_project_secret_api_keys

        @flow
        def monthly_rotation():
            report = rotate_project_secret_api_keys(
                PostHogCredentials.load("my-posthog"),
                selector=KeySelector(label_pattern="flags-*", older_than_days=30),
            )
            print([(key.label, key.status) for key in report.outcomes])

        monthly_rotation()
        ```
    """
    credentials = load_credentials(credentials)
    notification = load_notification(notification)
    template = None if store else secret_block_name_template
    options = rotation_options(
        strategy=strategy, verify=verify, dry_run=dry_run,
        settle=settle_time(credentials, settle_seconds), old_key_idle_hours=old_key_idle_hours,
        retire_deadline_hours=retire_deadline_hours, template=template, store=store)
    timeout = lock_timeout(lock_timeout_seconds)
    project = prove_project(credentials, project_id)
    report = RotationReport(dry_run=dry_run, strategy=strategy)
    with nullcontext() if dry_run else project_lock(credentials.host, project.id, timeout):
        steps = plan_rotation(credentials, selector, template, options, project_id=project_id)
        get_run_logger().info("%d key(s) to act on (%s%s)", len(steps), strategy,
                              ", dry run" if dry_run else "")
        report.outcomes = run_steps(credentials, steps, options, store, project_id)
    announce(credentials, project_id, report, notification)
    finish(artifact_key("posthog-key-rotation", dry_run),
           "PostHog project secret API key rotation" + (" (dry run)" if dry_run else ""),
           rotation_summary(report.outcomes, verify=verify, dry_run=dry_run, strategy=strategy,
                            notified=report.notified,
                            notification_error=report.notification_error),
           [rotation_row(k, verify=verify, dry_run=dry_run) for k in report.outcomes],
           failed=sum(k.status in UNHEALTHY for k in report.outcomes), noun="key",
           notification_error=report.notification_error)
    return report
