"""Running a rotation's chosen steps: the writes (one task per key), then the final check
until every written key is confirmed, changed again (written again, up to
`MAX_CONVERGE_ROUNDS`) or failed."""

from __future__ import annotations

from functools import partial

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.flows.final_check import settle_and_confirm
from prefect_posthog.flows.key_confirm import confirm_rotations
from prefect_posthog.flows.key_plan import RotationOptions, Step
from prefect_posthog.flows.key_writes import (
    StoreCallback,
    create_and_store,
    retire_old_key,
    roll_and_store,
)
from prefect_posthog.flows.models import FinalCheck, KeyAction, KeyRotationOutcome, KeyStatus

MAX_CONVERGE_ROUNDS = 2
KEPT_CHANGING = ("the live value kept changing after it was stored (late rolls or another "
                 "actor); the stored value is not live: run again")


def _write(credentials: PostHogCredentials, step: Step, options: RotationOptions,
           store: StoreCallback | None, project_id: int | str | None) -> KeyRotationOutcome:
    """Do one step's writes; its outcome keeps the status it earns unless a write failed."""
    outcome = step.outcome(options.strategy)
    block, settle = step.slot.block, options.settle
    roll = partial(roll_and_store, credentials, settle_seconds=settle, project_id=project_id)
    if step.action is KeyAction.START_OVERLAP:
        return create_and_store(credentials, outcome, step.target.scopes, block,
                                settle_seconds=settle, project_id=project_id)
    if step.action in (KeyAction.ROLL, KeyAction.REPAIR, KeyAction.STORE_SUCCESSOR):
        return roll(outcome, step.target.id, block, store=store, old_value=step.stored)
    if step.action is KeyAction.END_OVERLAP:
        outcome = roll(outcome, step.target.id, block, store=store, old_value=step.stored)
        if outcome.status is KeyStatus.FAILED:
            return outcome
    if step.action in (KeyAction.END_OVERLAP, KeyAction.RETIRE):
        return retire_old_key(credentials, outcome, project_id=project_id)
    return outcome  # wait: nothing to write


def run_steps(credentials: PostHogCredentials, steps: list[Step], options: RotationOptions,
              store: StoreCallback | None = None,
              project_id: int | str | None = None) -> list[KeyRotationOutcome]:
    """Every step's outcome: planned (dry run), or written and through the final check."""
    if options.dry_run:
        return [step.outcome(options.strategy).model_copy(update={"status": KeyStatus.PLANNED})
                for step in steps]
    blocks = {step.slot.label: step.slot.block for step in steps}
    outcomes = [_write(credentials, step, options, store, project_id) for step in steps]

    def redo(outcome: KeyRotationOutcome) -> KeyRotationOutcome:
        again = roll_and_store(credentials, outcome, outcome.id, blocks[outcome.label],
                               store=store, settle_seconds=options.settle,
                               project_id=project_id)
        again.reconciled = True
        return again

    outcomes = settle_and_confirm(
        outcomes,
        lambda current: confirm_rotations(credentials, current, blocks, verify=options.verify,
                                          project_id=project_id),
        settle=options.settle, reconciled=lambda o: o.reconciled,
        changed=lambda o: o.final_check is FinalCheck.CHANGED, redo=redo,
        rounds=MAX_CONVERGE_ROUNDS)
    for outcome in outcomes:
        if outcome.final_check is FinalCheck.CHANGED:
            outcome.status, outcome.reason = KeyStatus.FAILED, KEPT_CHANGING
    return outcomes
