"""Project secret API key rotation: roll, store, check the stored value is live, notify.

The story of one run:

1. Preflight, before anything is rolled: the project answers, the selector's ids and labels
   exist, every selected key has a storage place of its own (no two keys of the project map
   to one Secret block name), the notification block exists.
2. Per key: roll, store the new value at once, read the key back; if its live value is not
   the stored one (a roll the client gave up on landed late), roll again, knowingly.
3. Final check, after waiting out any late write: each key's live value is the stored one
   (and, where PostHog can check it, the stored value authenticates and the old one does
   not). Keys that changed again are converged; a key is `rotated` only if this passed.
"""

from __future__ import annotations

import fnmatch
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from prefect import flow, task
from prefect.blocks.system import Secret
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from pydantic import SecretStr
from pydantic.json_schema import SkipJsonSchema

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import (
    SECRETS,
    InvalidInputError,
    OutcomeUnknownError,
    PostHogClient,
    PostHogError,
    ProjectSecretAPIKey,
    UnexpectedResponseError,
)
from prefect_posthog.flows.blocks import NotificationChoice, load_credentials, load_notification
from prefect_posthog.flows.events import key_rotation_events, project_of
from prefect_posthog.flows.models import (
    KeyRotationOutcome,
    KeySelector,
    RotationReport,
    block_name,
)
from prefect_posthog.flows.preflight import project_or_fail, settle_time
from prefect_posthog.flows.report_rows import rotation_row, rotation_summary
from prefect_posthog.flows.reporting import artifact_key, finish, notify
from prefect_posthog.tasks import list_project_secret_api_keys

StoreCallback = Callable[[ProjectSecretAPIKey, SecretStr], str]
"""`store(key, value) -> location`: put a rolled value where consumers read it."""

MAX_ROLLS = 4
MAX_CONVERGE_ROUNDS = 2
CHECK_SCOPE = "feature_flag:read"


def mask_of(value: SecretStr) -> str:
    """PostHog's mask of a key value (first 4 + `...` + last 4), computed locally so a
    server's answer never decides what is shown."""
    raw = value.get_secret_value()
    return f"{raw[:4]}...{raw[-4:]}"


def select_keys(keys: list[ProjectSecretAPIKey], selector: KeySelector,
                now: datetime | None = None) -> list[ProjectSecretAPIKey]:
    """The keys meeting every criterion of the selector.

    Raises:
        InvalidInputError: An id or label of the selector names no key of the project.
    """
    ids, labels = {k.id for k in keys}, {k.label for k in keys}
    missing_ids = [i for i in selector.ids if i not in ids]
    if missing_ids:
        raise InvalidInputError("selector.ids", "no project secret API key has the id(s) "
                                + ", ".join(missing_ids) + "; nothing was rolled")
    missing_labels = [x for x in selector.labels if x not in labels]
    if missing_labels:
        raise InvalidInputError("selector.labels", "no project secret API key is labelled "
                                + ", ".join(repr(x) for x in missing_labels)
                                + "; nothing was rolled")
    now = now or datetime.now(timezone.utc)

    def meets(key: ProjectSecretAPIKey) -> bool:
        if selector.ids and key.id not in selector.ids:
            return False
        if selector.labels and key.label not in selector.labels:
            return False
        if selector.label_pattern and not fnmatch.fnmatchcase(key.label,
                                                              selector.label_pattern):
            return False
        if selector.older_than_days is not None:
            since = key.last_rolled_at or key.created_at
            if since is None or now - since <= timedelta(days=selector.older_than_days):
                return False
        return True

    return [k for k in keys if meets(k)]


def storage_names(all_keys: list[ProjectSecretAPIKey], chosen: list[ProjectSecretAPIKey],
                  template: str | None) -> dict[str, str | None]:
    """The Secret block name of every chosen key, refusing names shared with another key.

    Every key of the project is named, not only the chosen ones: a chosen key whose block
    name is also another key's would overwrite the value that key's consumers read.

    Raises:
        InvalidInputError: A name is invalid, or two keys would share one block.
    """
    if not template:
        return {k.id: None for k in chosen}
    names = {k.id: block_name(template, label=k.label, id=k.id) for k in all_keys}
    holders: dict[str, list[ProjectSecretAPIKey]] = defaultdict(list)
    for key in all_keys:
        holders[names[key.id]].append(key)
    for key in chosen:
        sharing = holders[names[key.id]]
        if len(sharing) > 1:
            who = ", ".join(f"{k.label!r} ({k.id})" for k in sharing)
            raise InvalidInputError(
                "secret_block_name_template", f"keys {who} would all be stored in Secret block "
                f"'{names[key.id]}'; use a template with {{id}} or relabel a key. Nothing was "
                "rolled")
    return {k.id: names[k.id] for k in chosen}


def _load_secret(name: str) -> SecretStr | None:
    try:
        value = SecretStr(str(Secret.load(name, _sync=True).get()))
    except (ValueError, RuntimeError):
        return None  # first rotation into this block
    SECRETS.add(value)  # masked in any text from the moment it is in hand
    return value


def _store(rolled: ProjectSecretAPIKey, value: SecretStr, secret_block: str | None,
           store: StoreCallback | None) -> str | None:
    if store is not None:
        return store(rolled, value)
    if secret_block:
        Secret(value=value).save(secret_block, overwrite=True, _sync=True)
        return f"Secret block '{secret_block}'"
    return None


def _is_live(posthog: PostHogClient, key_id: str, outcome: KeyRotationOutcome) -> bool:
    live = posthog.get_project_secret_api_key(key_id)
    return live.mask_value == outcome.mask_value and live.last_rolled_at == outcome.rolled_at


@task(name="Rotate one PostHog project secret API key", cache_policy=NO_CACHE,
      persist_result=False, retries=0, task_run_name="rotate-{key.label}")
def rotate_key(
    credentials: PostHogCredentials,
    key: ProjectSecretAPIKey,
    secret_block: str | None,
    store: StoreCallback | None = None,
    settle_seconds: float = 0.0,
    project_id: int | str | None = None,
) -> KeyRotationOutcome:
    """Roll one key and store the new value at once; roll again until the live value is the
    stored one.

    A roll whose outcome is unknown (lost response, timeout, malformed answer) may land
    later; the task waits `settle_seconds` for it and rolls again knowingly — the lost
    value is unknowable either way. The plaintext never leaves this task, and the task
    result (an outcome without the value) is not persisted.
    """
    logger = get_run_logger()
    outcome = KeyRotationOutcome(id=key.id, label=key.label, status="failed")
    old_value = _load_secret(secret_block) if secret_block else None
    with credentials.get_client(project_id) as posthog:
        for _ in range(MAX_ROLLS):
            outcome.rolls += 1
            try:
                rolled = posthog.roll_project_secret_api_key(key.id)
                if rolled.value is None:
                    raise UnexpectedResponseError("roll_project_secret_api_key",
                                                  ["value: missing"])
            except (OutcomeUnknownError, UnexpectedResponseError) as exc:
                outcome.reconciled = True
                logger.warning("Roll of key %s has an unknown outcome (%s); waiting %.0fs for "
                               "a late landing, then rolling again", key.label,
                               type(exc).__name__, settle_seconds)
                time.sleep(settle_seconds)
                continue
            except PostHogError as exc:
                outcome.reason = f"roll failed: {exc}"
                return outcome
            value: SecretStr = rolled.value
            outcome.mask_value, outcome.rolled_at = mask_of(value), rolled.last_rolled_at
            try:
                outcome.stored_in = _store(rolled, value, secret_block, store)
            except Exception as exc:  # any store failure: reported, never raised with text
                outcome.reason = (f"rolled but storing the new value failed "
                                  f"({type(exc).__name__}); consumers still hold the old, now "
                                  "revoked value: run again")
                return outcome
            try:
                live = _is_live(posthog, key.id, outcome)
            except PostHogError as exc:
                outcome.reason = f"rolled and stored, but reading the key back failed: {exc}"
                return outcome
            if live:
                if old_value is not None and CHECK_SCOPE in rolled.scopes:
                    try:
                        outcome.old_value_revoked = not posthog.check_project_secret_api_key(
                            old_value)
                    except PostHogError:
                        outcome.old_value_revoked = None
                outcome.status = "rotated"  # provisional: the flow's final check decides
                logger.info("Rolled key %s (%s), stored in %s", key.label,
                            outcome.mask_value, outcome.stored_in or "nowhere")
                return outcome
            outcome.reconciled = True
            logger.warning("Key %s changed again after it was rolled and stored (a late "
                           "roll landed); rolling again", key.label)
    outcome.status = "failed"
    outcome.reason = (f"no stable value after {outcome.rolls} roll attempts; the stored value "
                      "may be revoked: run again")
    return outcome


@task(name="Check rotated PostHog keys are live", cache_policy=NO_CACHE,
      persist_result=False, retries=0)
def confirm_rotations(
    credentials: PostHogCredentials,
    outcomes: list[KeyRotationOutcome],
    blocks: dict[str, str | None],
    verify: bool = True,
    project_id: int | str | None = None,
) -> list[KeyRotationOutcome]:
    """The final check: each key's live value is the one stored, read after any late write.

    Returns the outcomes with `status` decided: `rotated` when the live mask and
    `last_rolled_at` are the stored roll's, the stored Secret block holds that value and
    (for keys holding `feature_flag:read`, the only way PostHog checks a secret key) the
    stored value authenticates. Keys whose live value changed keep `status="failed"` with
    `reason="changed"` for the flow to converge. `blocks` maps key ids to the Secret
    block each value went to (`None` for a `store` callback or no storage).
    """
    result = []
    with credentials.get_client(project_id) as posthog:
        live = {k.id: k for k in posthog.iter_project_secret_api_keys()}
        for outcome in outcomes:
            outcome = outcome.model_copy()
            if outcome.status != "rotated":
                result.append(outcome)
                continue
            key = live.get(outcome.id)
            if key is None:
                outcome.status, outcome.reason = "failed", "the key was deleted during the run"
            elif key.mask_value != outcome.mask_value or key.last_rolled_at != outcome.rolled_at:
                outcome.status, outcome.reason = "failed", "changed"
            else:
                _check_stored(posthog, key, outcome, blocks.get(outcome.id), verify)
            result.append(outcome)
    return result


def _check_stored(posthog: PostHogClient, key: ProjectSecretAPIKey,
                  outcome: KeyRotationOutcome, block: str | None, verify: bool) -> None:
    checks = ["live value is the stored roll"]
    stored = _load_secret(block) if block else None
    if block and (stored is None or mask_of(stored) != key.mask_value):
        outcome.status = "failed"
        outcome.reason = f"Secret block '{block}' does not hold the live value: run again"
        return
    if block:
        checks.append("Secret block holds it")
    if not verify:
        checks.append("authentication not checked (verify is off)")
    elif CHECK_SCOPE not in key.scopes:
        checks.append(f"authentication not checked: PostHog checks a secret key only "
                      f"through flag evaluation, and this key lacks {CHECK_SCOPE}")
    elif stored is not None:
        try:
            outcome.new_value_works = posthog.check_project_secret_api_key(stored)
        except PostHogError as exc:
            outcome.status, outcome.reason = "failed", f"could not check the stored value: {exc}"
            return
        if not outcome.new_value_works:
            outcome.status = "failed"
            outcome.reason = "the stored value does not authenticate: run again"
            return
        checks.append("it authenticates")
        if outcome.old_value_revoked is False:
            outcome.status, outcome.reason = "failed", "the old value still authenticates"
            return
        if outcome.old_value_revoked:
            checks.append("old value revoked")
    else:
        checks.append("authentication not checked: the value went to a store callback")
    outcome.verification = "; ".join(checks)


@flow(name="posthog-rotate-project-secret-api-keys", persist_result=False)
def rotate_project_secret_api_keys(
    credentials: PostHogCredentials | str,
    selector: KeySelector,
    secret_block_name_template: str | None = "posthog-psak-{label}",
    notification: NotificationChoice | str | None = None,
    verify: bool = True,
    dry_run: bool = False,
    project_id: int | None = None,
    settle_seconds: float | None = None,
    store: SkipJsonSchema[StoreCallback | None] = None,
) -> RotationReport:
    """Roll project secret API keys, store each new value where consumers read it, check the
    stored value is the live one, and notify — without the value ever reaching a log, a
    result, an artifact or a message.

    Before anything is rolled, the project, the selector's ids and labels, every key's
    Secret block name (no two keys may share one) and the notification block are checked.
    Each key is rolled and its value stored at once. A roll whose outcome is unknown is
    waited out (`settle_seconds`) and rolled again knowingly; the run ends with a final
    check, after any late write could have landed, that each key's live value is the
    stored one — only then is a key reported `rotated`. One notification lists label,
    mask, time and storage place. Notification failures fail the run after the report.

    Args:
        credentials: PostHog credentials block, or its name (needs `project:write` and
            project admin rights).
        selector: Which keys; criteria narrow (a key must meet every one given).
        secret_block_name_template: Secret block name per key; `{label}` and `{id}` are
            filled in (slugified). `None` with no `store` keeps the value nowhere.
        notification: Any Prefect notification block (Slack, Teams, custom webhook...),
            or `<block-type-slug>/<name>` of a saved one.
        verify: Check the stored value authenticates and the old one no longer does.
        dry_run: List what would be rolled and where it would be stored, change nothing.
        project_id: Override the block's project.
        settle_seconds: How long a write whose response was lost may take to land; waited
            before reconciling and before the final check. Default: twice the block's
            request timeout.
        store: In pipelines, a callable `store(key, value) -> location` used instead of
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
                selector=KeySelector(label_pattern="backend-*", older_than_days=30),
            )
        ```
    """
    logger = get_run_logger()
    credentials = load_credentials(credentials)
    notification = load_notification(notification)
    settle = settle_time(credentials, settle_seconds)
    every_key = project_or_fail(credentials, project_id,
                                lambda: list_project_secret_api_keys(credentials,
                                                                     project_id=project_id))
    keys = select_keys(every_key, selector)
    names = storage_names(every_key, keys, None if store else secret_block_name_template)
    report = RotationReport(dry_run=dry_run)
    logger.info("%d of %d key(s) selected%s", len(keys), len(every_key),
                " (dry run)" if dry_run else "")
    if dry_run:
        report.outcomes = [KeyRotationOutcome(
            id=k.id, label=k.label, status="planned", mask_value=k.mask_value,
            stored_in=f"Secret block '{names[k.id]}'" if names[k.id] else None) for k in keys]
    else:
        by_id = {k.id: k for k in keys}
        outcomes = [rotate_key(credentials, k, names[k.id], store=store, settle_seconds=settle,
                               project_id=project_id) for k in keys]
        for _ in range(MAX_CONVERGE_ROUNDS + 1):
            if any(o.reconciled for o in outcomes) and settle:
                time.sleep(settle)  # let any roll the client gave up on land before checking
            outcomes = confirm_rotations(credentials, outcomes, names, verify=verify,
                                         project_id=project_id)
            changed = [o for o in outcomes if o.status == "failed" and o.reason == "changed"]
            if not changed:
                break
            logger.warning("%d key(s) changed after they were stored; rolling them again",
                           len(changed))
            again = {o.id: rotate_key(credentials, by_id[o.id], names[o.id], store=store,
                                      settle_seconds=settle, project_id=project_id)
                     for o in changed}
            for new in again.values():
                new.reconciled = True
            outcomes = [again.get(o.id, o) for o in outcomes]
        for o in outcomes:
            if o.status == "failed" and o.reason == "changed":
                o.reason = ("the live value kept changing after it was stored (late rolls or "
                            "another actor); the stored value is not live: run again")
        report.outcomes = outcomes
    key_rotation_events(project_of(credentials, project_id), report.outcomes, dry_run)
    rotated = [k for k in report.outcomes if k.status == "rotated"]
    if rotated:
        lines = [f"- {k.label} ({k.mask_value}) rolled at {k.rolled_at:%Y-%m-%d %H:%M:%S} UTC, "
                 f"stored in {k.stored_in or 'nowhere'}" for k in rotated]
        report.notification_error = notify(
            notification, f"PostHog: {len(rotated)} project secret API key(s) rotated",
            "\n".join(lines))
        report.notified = notification is not None and report.notification_error is None
    failed = [k for k in report.outcomes if k.status == "failed"]
    finish(
        artifact_key("posthog-key-rotation", dry_run),
        "PostHog project secret API key rotation" + (" (dry run)" if dry_run else ""),
        rotation_summary(report.outcomes, verify=verify, dry_run=dry_run,
                         notified=report.notified,
                         notification_error=report.notification_error),
        [rotation_row(k, verify=verify, dry_run=dry_run) for k in report.outcomes],
        failed=len(failed), noun="key", notification_error=report.notification_error)
    return report
