"""The writes of a rotation, one task per key: roll and store, create a successor and store
it, retire an overlap's old key.

A value PostHog shows once is stored where consumers read it the moment it is in hand,
before anything else can fail; the task then reads the key back. A write whose outcome is
unknown (lost response, timeout, malformed answer) may still land: the task waits
`settle_seconds` for it, reads what PostHog holds and acts knowingly — a lost roll is
followed by a deliberate roll (the lost value is unknowable), a lost create by a roll of
the successor if it exists, else by a second create (PostHog refuses a duplicate label, so
there are never two successors). Values never leave these tasks; their results (outcomes
without values) are not persisted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from pydantic import SecretStr

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import (
    NotFoundError,
    OutcomeUnknownError,
    PostHogClient,
    PostHogError,
    ProjectSecretAPIKey,
    UnexpectedResponseError,
    ValidationError,
)
from prefect_posthog.flows.key_slots import store_time, successor_label
from prefect_posthog.flows.models import KeyRotationOutcome, KeyStatus
from prefect_posthog.flows.secret_store import mask_of, stored_in, write_secret

StoreCallback = Callable[[ProjectSecretAPIKey, SecretStr], str]
"""`store(key, value) -> location`: put a new value where consumers read it."""

MAX_WRITES = 4
_UNKNOWN = (OutcomeUnknownError, UnexpectedResponseError)


def _store(key: ProjectSecretAPIKey, value: SecretStr, block: str | None,
           store: StoreCallback | None) -> str | None:
    if store is not None:
        return store(key, value)
    if block:
        write_secret(block, value)
        return stored_in(block)
    return None


def _keep(outcome: KeyRotationOutcome, key: ProjectSecretAPIKey, block: str | None,
          store: StoreCallback | None) -> bool:
    """Store the value PostHog just showed; `False` (with the reason) if that failed."""
    assert key.value is not None
    outcome.mask_value, outcome.rolled_at = mask_of(key.value), store_time(key)
    try:
        outcome.stored_in = _store(key, key.value, block, store)
    except Exception as exc:  # any store failure: reported, never raised with its text
        outcome.reason = (f"the new value could not be stored ({type(exc).__name__}); "
                          "consumers still hold the previous value: run again")
        return False
    return True


def _is_stored(posthog: PostHogClient, key_id: str, outcome: KeyRotationOutcome) -> bool:
    live = posthog.get_project_secret_api_key(key_id)
    return live.mask_value == outcome.mask_value and store_time(live) == outcome.rolled_at


def _roll(posthog: PostHogClient, outcome: KeyRotationOutcome, key_id: str, block: str | None,
          store: StoreCallback | None, settle: float) -> bool:
    """Roll until the live value is the stored one; `True` once it is."""
    logger = get_run_logger()
    for _ in range(MAX_WRITES):
        outcome.rolls += 1
        try:
            rolled = posthog.roll_project_secret_api_key(key_id)
            if rolled.value is None:
                raise UnexpectedResponseError("roll_project_secret_api_key", ["value: missing"])
        except _UNKNOWN as exc:
            outcome.reconciled = True
            logger.warning("Roll of key %s has an unknown outcome (%s); waiting %.0fs for a "
                           "late landing, then rolling again", outcome.label,
                           type(exc).__name__, settle)
            time.sleep(settle)
            continue
        if not _keep(outcome, rolled, block, store):
            return False
        if _is_stored(posthog, key_id, outcome):
            return True
        outcome.reconciled = True
        logger.warning("Key %s changed again after it was rolled and stored (a late roll "
                       "landed); rolling again", outcome.label)
    outcome.reason = (f"no stable value after {outcome.rolls} roll attempts; the stored value "
                      "may be revoked: run again")
    return False


def _failed(outcome: KeyRotationOutcome, reason: str) -> KeyRotationOutcome:
    outcome.status, outcome.reason = KeyStatus.FAILED, outcome.reason or reason
    return outcome


@task(name="Roll one PostHog project secret API key", cache_policy=NO_CACHE,
      persist_result=False, retries=0, task_run_name="roll-{outcome.label}")
def roll_and_store(
    credentials: PostHogCredentials,
    outcome: KeyRotationOutcome,
    key_id: str,
    block: str | None,
    store: StoreCallback | None = None,
    old_value: SecretStr | None = None,
    settle_seconds: float = 0.0,
    project_id: int | str | None = None,
) -> KeyRotationOutcome:
    """Roll `key_id`, store the new value at once, and read the key back until its live
    value is the stored one; then check `old_value` (the key's previous value, which
    consumers held) is refused. The status the outcome carries stands only if the final
    check passes; a failure here sets `failed`."""
    outcome = outcome.model_copy(update={"id": key_id, "final_check": None})
    with credentials.get_client(project_id) as posthog:
        try:
            if not _roll(posthog, outcome, key_id, block, store, settle_seconds):
                return _failed(outcome, "rolling failed")
            if old_value is not None:
                outcome.old_value_revoked = not posthog.check_project_secret_api_key(old_value)
        except PostHogError as exc:
            return _failed(outcome, f"rolling failed: {exc}")
    get_run_logger().info("Rolled key %s (%s), stored in %s", outcome.label,
                          outcome.mask_value, outcome.stored_in or "nowhere")
    return outcome


def _successor(posthog: PostHogClient, label: str) -> ProjectSecretAPIKey | None:
    return next((k for k in posthog.iter_project_secret_api_keys() if k.label == label), None)


def _create(posthog: PostHogClient, outcome: KeyRotationOutcome, label: str,
            scopes: list[str], settle: float) -> ProjectSecretAPIKey | str:
    """A new successor with its value, or the id of one that exists (value unknown)."""
    for _ in range(MAX_WRITES):
        outcome.rolls += 1
        try:
            created = posthog.create_project_secret_api_key(label, scopes)
            if created.value is None:
                raise UnexpectedResponseError("create_project_secret_api_key",
                                              ["value: missing"])
            return created
        except _UNKNOWN:
            outcome.reconciled = True
            time.sleep(settle)  # a create the client gave up on may still land
            found = _successor(posthog, label)
        except ValidationError:
            # Taken label: a late create landed. Anything else is PostHog's refusal.
            found = _successor(posthog, label)
            if found is None:
                raise
        if found is not None:
            return found.id
    raise OutcomeUnknownError("create_project_secret_api_key",
                              f"{MAX_WRITES} creations unconfirmed")


@task(name="Create a successor PostHog project secret API key", cache_policy=NO_CACHE,
      persist_result=False, retries=0, task_run_name="overlap-{outcome.label}")
def create_and_store(
    credentials: PostHogCredentials,
    outcome: KeyRotationOutcome,
    scopes: list[str],
    block: str | None,
    settle_seconds: float = 0.0,
    project_id: int | str | None = None,
) -> KeyRotationOutcome:
    """Create the successor of `outcome.label` (labelled `<label>~next`, same scopes) and
    store its value at once; the old key keeps working. A successor that exists already
    (a lost create that landed) is rolled to learn a value."""
    outcome = outcome.model_copy(update={"final_check": None})
    label = successor_label(outcome.label)
    with credentials.get_client(project_id) as posthog:
        try:
            created = _create(posthog, outcome, label, scopes, settle_seconds)
            if isinstance(created, str):
                outcome.id = created
                if not _roll(posthog, outcome, created, block, None, settle_seconds):
                    return _failed(outcome, "storing the successor failed")
            else:
                outcome.id = created.id
                if not _keep(outcome, created, block, None):
                    return _failed(outcome, "storing the successor failed")
        except PostHogError as exc:
            return _failed(outcome, f"creating the successor failed: {exc}")
    get_run_logger().info("Successor %s of key %s (%s) stored in %s", label, outcome.label,
                          outcome.mask_value, outcome.stored_in or "nowhere")
    return outcome


@task(name="Retire an overlapped PostHog project secret API key", cache_policy=NO_CACHE,
      persist_result=False, retries=0, task_run_name="retire-{outcome.label}")
def retire_old_key(
    credentials: PostHogCredentials,
    outcome: KeyRotationOutcome,
    project_id: int | str | None = None,
) -> KeyRotationOutcome:
    """Delete the old key first, then give the successor its label (PostHog answers 500 to
    a label another key still holds). A run stopped in between leaves a successor without
    an old key, which the next run relabels."""
    outcome = outcome.model_copy(update={"final_check": None})
    with credentials.get_client(project_id) as posthog:
        try:
            if outcome.old_key_id:
                with suppress(NotFoundError):  # already gone: a run stopped after deleting it
                    posthog.delete_project_secret_api_key(outcome.old_key_id)
            posthog.update_project_secret_api_key(outcome.id, label=outcome.label)
        except PostHogError as exc:
            return _failed(outcome, f"retiring the old key failed: {exc}")
    get_run_logger().info("Retired the old key of %s; its successor holds the label",
                          outcome.label)
    return outcome
