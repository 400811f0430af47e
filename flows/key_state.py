"""What a key's Secret block holds compared with the live key, and whether an overlap's old
key may go: read by the rotation (to find drift and continue overlaps) and by the audit.

PostHog shows a key's value only when it is created or rolled; afterwards it shows its mask
(`phs_` + `...` + the last 4 characters) and stamps `last_used_at` when the key is used —
only if the stamp is empty or over an hour old (`posthog/auth.py`, and the flags service's
`rust/feature-flags/src/api/api_key_usage.rs` since PostHog #94532). So:

- a block whose value's mask is not the live mask holds a dead value (rolled elsewhere);
- checking that a value authenticates is a use of the key: it may stamp `last_used_at`.
  During an overlap neither key is checked: a check of the old key would look like a
  consumer still using it, one of the successor like a consumer adopting it. The only
  check of a successor is the one right after it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import SecretStr

from prefect_posthog.client import PostHogClient, ProjectSecretAPIKey
from prefect_posthog.flows.key_slots import KeySlot, store_time
from prefect_posthog.flows.models import KeyState
from prefect_posthog.flows.secret_store import mask_of, read_secret

CHECK_SCOPE = "feature_flag:read"
# PostHog stamps last_used_at at most once an hour.
STAMP_INTERVAL = timedelta(hours=1)
# The job's own check of a successor happens in the run that stored it, within minutes;
# a stamp later than store time + an hour + this margin can only be a consumer's.
ADOPTION_MARGIN = timedelta(minutes=10)


def when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "never"


def checkable(key: ProjectSecretAPIKey) -> bool:
    """Whether PostHog can check the key's value: only through flag definitions."""
    return CHECK_SCOPE in key.scopes


@dataclass
class Reading:
    """A slot's block against its live key(s).

    Attributes:
        state: What the block holds.
        detail: The same, as people read it.
        stored: The block's value (registered as a secret), if any.
        successor_stored: In an overlap, whether the block holds the successor's value.
    """

    state: KeyState
    detail: str
    stored: SecretStr | None = None
    successor_stored: bool = False

    @property
    def stored_mask(self) -> str | None:
        return mask_of(self.stored)


def read_slot(posthog: PostHogClient, slot: KeySlot, *, probe: bool) -> Reading:
    """Compare the slot's block with the live key; `probe` also checks, outside overlaps,
    that a value with the live mask authenticates (a use of the key)."""
    stored = read_secret(slot.block)
    if slot.in_overlap:
        return _read_overlap(slot, stored)
    key = slot.stored_key
    if stored is None:
        return Reading(KeyState.NO_STORAGE, "no Secret block for this key yet")
    if mask_of(stored) != key.mask_value:
        return Reading(KeyState.ROLLED_ELSEWHERE, f"the block holds {mask_of(stored)}, the "
                       f"live value is {key.mask_value} (last rolled "
                       f"{when(key.last_rolled_at)})", stored)
    if not probe or not checkable(key):
        return Reading(KeyState.IN_SYNC, "the block holds the live mask", stored)
    if not posthog.check_project_secret_api_key(stored):
        return Reading(KeyState.STORED_VALUE_DEAD, "the block holds the live mask but PostHog "
                       "refuses the value", stored)
    return Reading(KeyState.IN_SYNC, "the block holds the live value; it authenticates", stored)


def _read_overlap(slot: KeySlot, stored: SecretStr | None) -> Reading:
    successor, old = slot.successor, slot.current
    assert successor is not None
    mask = mask_of(stored)
    if stored is not None and mask == successor.mask_value:
        return Reading(KeyState.IN_OVERLAP, "the block holds the successor", stored, True)
    if stored is None or (old is not None and mask == old.mask_value):
        return Reading(KeyState.IN_OVERLAP, "the successor is stored nowhere yet (a run "
                       "stopped between creating and storing it); consumers still read the "
                       "old key", stored)
    return Reading(KeyState.ROLLED_ELSEWHERE, f"the block holds {mask}, the successor's live "
                   f"value is {successor.mask_value} (last rolled "
                   f"{when(successor.last_rolled_at)})", stored)


@dataclass
class Retirement:
    """Whether an overlap's old key may go now.

    Attributes:
        ready: Consumers use the successor and none used the old key for long enough.
        overdue: Not ready, and past the deadline.
        detail: The adoption progress, as people read it.
    """

    ready: bool
    overdue: bool
    detail: str


def retirement(slot: KeySlot, now: datetime, idle: timedelta,
               deadline: timedelta) -> Retirement:
    """Judge an overlap from PostHog's own stamps (the old key is never probed)."""
    successor, old = slot.successor, slot.current
    assert successor is not None
    stored_at = store_time(successor) or now
    used = successor.last_used_at
    adopted = used is not None and used > stored_at + STAMP_INTERVAL + ADOPTION_MARGIN
    if old is None:
        return Retirement(True, False, "the old key is already deleted; the successor takes "
                          "its label")
    old_used = old.last_used_at
    idle_for = now - old_used if old_used is not None else None
    old_idle = idle_for is None or idle_for >= idle
    parts = [f"successor stored {when(stored_at)}",
             f"consumers use it: {'yes, last ' + when(used) if adopted else 'not seen yet'}",
             f"old key last used {when(old_used)}"
             + (f" ({idle_for.total_seconds() / 3600:.1f} h ago, "
                f"{idle.total_seconds() / 3600:g} h idle needed)" if idle_for is not None
                else "")]
    ready = adopted and old_idle
    overdue = not ready and now - stored_at > deadline
    if overdue:
        parts.append("past the deadline: consumers still use the old key"
                     if not old_idle else "past the deadline: no consumer uses the successor")
    return Retirement(ready, overdue, "; ".join(parts))
