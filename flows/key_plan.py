"""Choosing, before any write, what a rotation run does with each key in its selector's scope.

- A key the selector names (ids, labels, pattern), whatever its age, is checked for drift:
  a Secret block holding a value that is not the live one means its consumers are already
  cut off, so it is repaired (rolled, or for `overlap` given a successor), never skipped.
  A key without a block yet has no storage, which is not drift.
- A key that also meets the age criterion is rotated: rolled (`roll`), or given a
  successor (`overlap`).
- An overlap in progress is carried on from what PostHog holds: a successor stored nowhere
  is rolled and stored, and the old key is retired once consumers moved (`key_state`).
- `roll` on a key in an overlap ends the overlap: the successor is rolled and stored, the
  old key deleted at once (every value anyone held dies, as a roll promises).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import InvalidInputError, PostHogClient, ProjectSecretAPIKey
from prefect_posthog.flows.key_slots import (
    KeySlot,
    check_overlap_room,
    is_due,
    read_scope,
    store_time,
    template_fields,
)
from prefect_posthog.flows.key_state import Reading, checkable, read_slot, retirement
from prefect_posthog.flows.models import (
    DRIFT,
    KeyAction,
    KeyRotationOutcome,
    KeySelector,
    KeyStatus,
    Strategy,
)
from prefect_posthog.flows.secret_store import stored_in


@dataclass(frozen=True)
class RotationOptions:
    """The run's choices, checked (see `rotation_options`)."""

    strategy: Strategy
    verify: bool
    dry_run: bool
    settle: float
    idle: timedelta
    deadline: timedelta


def rotation_options(*, strategy: Strategy, verify: bool, dry_run: bool, settle: float,
                     old_key_idle_hours: float, retire_deadline_hours: float,
                     template: str | None, store: object | None) -> RotationOptions:
    """The options, or an error naming the field to fix before anything is written.

    Raises:
        InvalidInputError: A bad value, or an overlap without a Secret block named from
            the label alone (a store callback cannot be read back, and the surviving
            key's id changes when the old one is retired).
    """
    if strategy not in ("roll", "overlap"):
        raise InvalidInputError("strategy", "must be 'roll' or 'overlap'")
    if old_key_idle_hours < 1:
        raise InvalidInputError("old_key_idle_hours", "must be at least 1: PostHog stamps "
                                "last_used_at at most once an hour, so a key used less than "
                                "an hour ago can look unused")
    if retire_deadline_hours < old_key_idle_hours + 1:
        raise InvalidInputError("retire_deadline_hours", "must be at least "
                                "old_key_idle_hours + 1")
    if strategy == "overlap":
        if store is not None:
            raise InvalidInputError("store", "strategy 'overlap' keeps each value in a Secret "
                                    "block, which a later run reads to carry the overlap on; "
                                    "a store callback cannot be read back: use strategy "
                                    "'roll' with it")
        if not template or "id" in template_fields(template):
            raise InvalidInputError("secret_block_name_template", "strategy 'overlap' needs a "
                                    "Secret block named from {label} only (the key that "
                                    "survives an overlap has another id than the old one)")
    return RotationOptions(strategy, verify, dry_run, settle,
                           timedelta(hours=old_key_idle_hours),
                           timedelta(hours=retire_deadline_hours))


@dataclass
class Step:
    """What the run does to one slot, and the status that earns if it ends well.

    Attributes:
        target: The key written: rolled, or (`start_overlap`) the old key whose scopes the
            successor gets.
        stored: What the block held before (to check a rolled key's old value is refused).
    """

    slot: KeySlot
    action: KeyAction
    status: KeyStatus
    target: ProjectSecretAPIKey
    detail: str | None = None
    stored: SecretStr | None = None

    def outcome(self, strategy: Strategy) -> KeyRotationOutcome:
        """The outcome before any write: what was chosen, and where the value goes."""
        slot, key = self.slot, self.target
        old = slot.current if slot.in_overlap or self.action is KeyAction.START_OVERLAP \
            else None
        return KeyRotationOutcome(
            id=key.id, label=slot.label, status=self.status, action=self.action,
            strategy=strategy, old_key_id=old.id if old else None, mask_value=key.mask_value,
            rolled_at=store_time(key), stored_in=stored_in(slot.block), detail=self.detail)


def _overlap_step(slot: KeySlot, reading: Reading, due: bool, options: RotationOptions,
                  now: datetime) -> Step:
    successor = slot.successor
    assert successor is not None
    if reading.state in DRIFT:
        return Step(slot, KeyAction.REPAIR, KeyStatus.REPAIRED, successor, reading.detail)
    if not reading.successor_stored:
        return Step(slot, KeyAction.STORE_SUCCESSOR, KeyStatus.ROTATED, successor,
                    "a successor existed whose value was stored nowhere: rolled and stored; "
                    "the old key retires once consumers moved")
    if due and options.strategy == "roll":
        # The block holds the successor's value: once rolled, it must be refused.
        old = reading.stored if options.verify and checkable(successor) else None
        return Step(slot, KeyAction.END_OVERLAP, KeyStatus.ROTATED, successor,
                    "strategy 'roll' ends the overlap: successor rolled, old key deleted",
                    old)
    judged = retirement(slot, now, options.idle, options.deadline)
    if judged.ready:
        return Step(slot, KeyAction.RETIRE, KeyStatus.RETIRED, successor, judged.detail)
    status = KeyStatus.OVERDUE if judged.overdue else KeyStatus.OVERLAPPING
    return Step(slot, KeyAction.WAIT, status, successor, judged.detail)


def choose(posthog: PostHogClient, slot: KeySlot, due: bool, options: RotationOptions,
           now: datetime) -> Step | None:
    """The step for one slot in scope, or `None` when it needs nothing. A key that is not
    due is checked to authenticate (outside overlaps): its block may hold a dead value."""
    if slot.block is None:  # stored elsewhere or nowhere: nothing can be compared
        if not due:
            return None
        action = KeyAction.END_OVERLAP if slot.in_overlap else KeyAction.ROLL
        return Step(slot, action, KeyStatus.ROTATED, slot.stored_key)
    probe = options.verify and not options.dry_run and not due
    return step_for(slot, read_slot(posthog, slot, probe=probe), due, options, now)


def step_for(slot: KeySlot, reading: Reading, due: bool, options: RotationOptions,
             now: datetime) -> Step | None:
    """The step for a slot whose block was read (`key_state.read_slot`)."""
    if slot.in_overlap:
        return _overlap_step(slot, reading, due, options, now)
    drifted = reading.state in DRIFT
    if not (due or drifted):
        return None
    key = slot.stored_key
    status = KeyStatus.REPAIRED if drifted else KeyStatus.ROTATED
    if options.strategy == "overlap":
        return Step(slot, KeyAction.START_OVERLAP, status, key,
                    "successor created and stored; the old key keeps working until "
                    "consumers moved, then a later run retires it" + (
                        f" (the block held a dead value: {reading.detail})" if drifted else ""))
    if drifted:
        return Step(slot, KeyAction.REPAIR, status, key, reading.detail)
    old = reading.stored if options.verify and checkable(key) else None
    return Step(slot, KeyAction.ROLL, status, key, stored=old)


@task(name="Choose what to do with each PostHog key", cache_policy=NO_CACHE,
      persist_result=False, retries=0)
def plan_rotation(
    credentials: PostHogCredentials,
    selector: KeySelector,
    template: str | None,
    options: RotationOptions,
    project_id: int | str | None = None,
) -> list[Step]:
    """Read every key and its block, then choose one step per slot that needs one.

    Raises:
        InvalidInputError: The selector names no such key, two keys would share a block,
            or successors PostHog would refuse (labels over 40 characters, the 50-key cap).
    """
    with credentials.get_client(project_id) as posthog:
        scope = read_scope(posthog, selector, template)
        now = scope.now
        steps = [step for slot in scope.named
                 if (step := choose(posthog, slot, is_due(slot, selector, now), options, now))]
    check_overlap_room(scope.slots,
                       [s.slot for s in steps if s.action is KeyAction.START_OVERLAP],
                       scope.total)
    return steps
