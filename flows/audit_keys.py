"""The audit of project secret API keys: does every Secret block hold its key's live value?

The story of one run:

1. Validate, prove the project, take the project's lock (so the audit never reads a
   rotation half-way and reports drift that is not there).
2. Read every key in scope and its block (`key_state.read_slot`): `in_sync`,
   `rolled_elsewhere` (the mask differs: consumers hold a dead value), `stored_value_dead`
   (the mask matches, PostHog refuses the value), `in_overlap` (with the consumers'
   progress; neither key of an overlap is ever checked: a check would count as a use) or
   `no_storage`.
3. With `repair=True`, repair the drifted keys as the rotation does (roll, or for
   `overlap` a successor; store; final check).
4. Announce (an `audited` event per key, `drift-detected` for each drifted one, a
   notification when drift is found) and finish: the run fails while drift remains.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from prefect import flow, task
from prefect.blocks.abstract import NotificationBlock
from prefect.cache_policies import NO_CACHE
from pydantic import Field

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.flows.blocks import NotificationChoice, load_credentials, load_notification
from prefect_posthog.flows.events import key_audit_events, key_rotation_events, project_of
from prefect_posthog.flows.key_plan import RotationOptions, Step, rotation_options, step_for
from prefect_posthog.flows.key_run import run_steps
from prefect_posthog.flows.key_slots import KeySlot, read_scope
from prefect_posthog.flows.key_state import Reading, read_slot, retirement
from prefect_posthog.flows.models import (
    DRIFT,
    AuditReport,
    KeyAudit,
    KeySelector,
    KeyState,
    KeyStatus,
    Strategy,
)
from prefect_posthog.flows.preflight import prove_project, settle_time
from prefect_posthog.flows.project_lock import (
    DEFAULT_LOCK_TIMEOUT_SECONDS,
    MAX_LOCK_TIMEOUT_SECONDS,
    lock_timeout,
    project_lock,
)
from prefect_posthog.flows.report_rows import audit_row, audit_summary
from prefect_posthog.flows.reporting import finish, notify
from prefect_posthog.flows.secret_store import stored_in


def _audit(slot: KeySlot, reading: Reading, options: RotationOptions,
           now: datetime) -> KeyAudit:
    key = slot.stored_key
    detail = reading.detail
    if reading.state is KeyState.IN_OVERLAP and reading.successor_stored:
        detail = retirement(slot, now, options.idle, options.deadline).detail
    return KeyAudit(id=key.id, label=slot.label, state=reading.state, detail=detail,
                    stored_in=stored_in(slot.block), live_mask=key.mask_value,
                    stored_mask=reading.stored_mask, last_used_at=key.last_used_at)


@task(name="Audit each PostHog key against its Secret block", cache_policy=NO_CACHE,
      persist_result=False, retries=0)
def audit_keys(
    credentials: PostHogCredentials,
    selector: KeySelector | None,
    template: str | None,
    options: RotationOptions,
    project_id: int | str | None = None,
) -> tuple[list[KeyAudit], list[Step]]:
    """Every key in scope as found, and the repairs the rotation would make for drift."""
    audits, repairs = [], []
    with credentials.get_client(project_id) as posthog:
        scope = read_scope(posthog, selector, template)
        for slot in scope.named:
            reading = read_slot(posthog, slot, probe=options.verify)
            audits.append(_audit(slot, reading, options, scope.now))
            step = step_for(slot, reading, False, options, scope.now)
            if reading.state in DRIFT and step is not None:
                repairs.append(step)
    return audits, repairs


def _notice(audits: list[KeyAudit]) -> tuple[str, str] | None:
    drifted = [a for a in audits if a.state in DRIFT]
    if not drifted:
        return None
    lines = [f"- {a.label}: {a.state} ({a.detail})"
             + (f"; repair: {a.repair}" if a.repair else "; not repaired (repair is off)")
             for a in drifted]
    return (f"PostHog: {len(drifted)} project secret API key(s) whose stored value is not "
            "live", "\n".join(lines))


def conclude(credentials: PostHogCredentials, project_id: int | None, report: AuditReport,
             notification: NotificationBlock | None, *, repair: bool, verify: bool) -> None:
    """Each key's repair on its row, the events, one notification if drift was found, and
    the report (failed while drift remains)."""
    ended = {o.label: o for o in report.repaired}
    for audit in report.audits:
        if audit.label in ended:
            audit.repair, audit.reason = ended[audit.label].status, ended[audit.label].reason
    where = project_of(credentials, project_id)
    key_audit_events(where, report.audits)
    key_rotation_events(where, report.repaired, dry_run=False)
    notice = _notice(report.audits)
    if notice is not None:
        report.notification_error = notify(notification, *notice)
        report.notified = notification is not None and report.notification_error is None
    unhealed = [a for a in report.audits
                if a.state in DRIFT and a.repair is not KeyStatus.REPAIRED]
    finish("posthog-key-audit", "PostHog project secret API key audit",
           audit_summary(report.audits, repair=repair, verify=verify, notified=report.notified,
                         notification_error=report.notification_error),
           [audit_row(a) for a in report.audits], failed=len(unhealed), noun="key",
           notification_error=report.notification_error,
           detail=f"{len(unhealed)} key(s) hold a stored value that is not live"
           if unhealed else None)


@flow(name="posthog-audit-project-secret-api-keys", persist_result=False)
# A flow's parameters are its Run form in the Prefect UI: one field each, not an object.
def audit_project_secret_api_keys(  # noqa: PLR0913
    credentials: PostHogCredentials | str,
    selector: KeySelector | None = None,
    secret_block_name_template: str | None = "posthog-psak-{label}",
    repair: bool = False,
    notification: NotificationChoice | str | None = None,
    strategy: Strategy = "roll",
    verify: bool = True,
    project_id: int | None = None,
    settle_seconds: float | None = None,
    old_key_idle_hours: Annotated[float, Field(ge=1)] = 2.0,
    retire_deadline_hours: Annotated[float, Field(ge=2)] = 168.0,
    lock_timeout_seconds: Annotated[float, Field(ge=0, le=MAX_LOCK_TIMEOUT_SECONDS)] = (
        DEFAULT_LOCK_TIMEOUT_SECONDS),
) -> AuditReport:
    """Check that every key's Secret block holds the key's live value; report (and with
    `repair`, fix) the ones that do not — without a value reaching any log or report.

    For each key in scope (`selector`, ids, labels and pattern; `None`: all keys) the
    block's value is compared with the live key: `in_sync`, `rolled_elsewhere`,
    `stored_value_dead`, `in_overlap` (with the consumers' progress) or `no_storage`.
    Outside overlaps a matching value is also checked to authenticate (with `verify`),
    which PostHog counts as a use of the key; the keys of an overlap are never checked.
    Each key gets an `audited` event, each drifted one a `drift-detected` event, and one
    notification lists the drift. The run fails while drift remains, so alerting on failed
    runs catches it. `repair=True` repairs drift as the rotation does (`strategy`).

    Args:
        credentials: PostHog credentials block, or its name (`project:read`; repair also
            needs `project:write`).
        selector: Which keys; `None` audits every key of the project (age is ignored).
        secret_block_name_template: The rotation's template for Secret block names.
        repair: Repair drifted keys (roll, or `overlap`: a successor), store, verify.
        notification: Any Prefect notification block, or `<block-type-slug>/<name>`.
        strategy: How a repair replaces a key: `roll` or `overlap`.
        verify: Check that stored values authenticate (outside overlaps).
        project_id: Override the block's project.
        settle_seconds: As for the rotation: how long a lost write may take to land.
        old_key_idle_hours: As for the rotation (used for the overlap progress shown).
        retire_deadline_hours: As for the rotation (used for the overlap progress shown).
        lock_timeout_seconds: How long to wait for another run holding the project.

    Returns:
        The report: each key's state and the repairs; never a key value.

    Example:
        ```python
        from prefect import flow
        from prefect_posthog import PostHogCredentials
        from prefect_posthog.flows import audit_project_secret_api_keys

        @flow
        def hourly_audit():
            report = audit_project_secret_api_keys(PostHogCredentials.load("my-posthog"))
            print([(key.label, key.state) for key in report.audits])

        hourly_audit()
        ```
    """
    credentials = load_credentials(credentials)
    notification = load_notification(notification)
    options = rotation_options(
        strategy=strategy, verify=verify, dry_run=False,
        settle=settle_time(credentials, settle_seconds), old_key_idle_hours=old_key_idle_hours,
        retire_deadline_hours=retire_deadline_hours, template=secret_block_name_template,
        store=None)
    timeout = lock_timeout(lock_timeout_seconds)
    project = prove_project(credentials, project_id)
    report = AuditReport()
    with project_lock(credentials.host, project.id, timeout):
        report.audits, repairs = audit_keys(credentials, selector, secret_block_name_template,
                                            options, project_id=project_id)
        if repair and repairs:
            report.repaired = run_steps(credentials, repairs, options, None, project_id)
    conclude(credentials, project_id, report, notification, repair=repair, verify=verify)
    return report
