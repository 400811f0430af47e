"""The secret jobs' last word: wait out any write the client gave up on, then check what is
stored is live; where the check finds a value changed after it was stored, write it again
and check again. Every write is followed by a check: no job reports success for a value
it did not check after its last write."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def settle_and_confirm(
    outcomes: list[T],
    confirm: Callable[[list[T]], list[T]],
    *,
    settle: float,
    reconciled: Callable[[T], bool],
    changed: Callable[[T], bool] = lambda _: False,
    redo: Callable[[T], T] | None = None,
    rounds: int = 0,
) -> list[T]:
    """Confirm the outcomes, redoing the changed ones up to `rounds` times.

    Args:
        outcomes: The items written.
        confirm: The final check of all items (returns them with their verdict).
        settle: Seconds a write whose response was lost may take to land on the server.
        reconciled: Whether an item had such a write (then the check waits `settle`).
        changed: Whether the check found the item's live value changed after it was stored.
        redo: Writes a changed item again (its outcome says whether that was reconciled).
        rounds: How many times changed items are written again; each is checked again.

    Returns:
        The outcomes of the last check; items still `changed` are left for the caller.
    """
    for round_ in range(rounds + 1):
        if settle and any(reconciled(o) for o in outcomes):
            time.sleep(settle)  # let any write the client gave up on land before checking
        outcomes = confirm(outcomes)
        again = [o for o in outcomes if changed(o)]
        if not again or redo is None or round_ == rounds:
            break
        outcomes = [redo(o) if changed(o) else o for o in outcomes]
    return outcomes
