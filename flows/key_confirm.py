"""The rotation's final check of every key it wrote, read after any late write could land.

A key passes when its live mask and store time are the ones the job stored, its Secret
block holds that value and — for keys holding `feature_flag:read`, the only way PostHog
checks a secret key — the stored value authenticates (on the flags service, as consumers
use it). For a roll, the old value must be refused; during an overlap the old key is not
checked (a check would count as a consumer's use). A retired overlap also needs the old
key gone and the label on the successor.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import PostHogClient, PostHogError, ProjectSecretAPIKey
from prefect_posthog.flows.key_slots import store_time
from prefect_posthog.flows.key_state import CHECK_SCOPE, checkable
from prefect_posthog.flows.models import FinalCheck, KeyAction, KeyRotationOutcome, KeyStatus
from prefect_posthog.flows.secret_store import mask_of, read_secret

WRITTEN = frozenset({KeyStatus.ROTATED, KeyStatus.REPAIRED, KeyStatus.RETIRED})
_OVERLAP_ACTIONS = frozenset({KeyAction.START_OVERLAP, KeyAction.STORE_SUCCESSOR})


def needs_check(outcome: KeyRotationOutcome) -> bool:
    """A write whose final check is still to come (or must be repeated)."""
    return outcome.status in WRITTEN and outcome.final_check in (None, FinalCheck.CHANGED)


def _fail(outcome: KeyRotationOutcome, reason: str) -> None:
    outcome.final_check, outcome.status, outcome.reason = (FinalCheck.FAILED, KeyStatus.FAILED,
                                                           reason)


def _retired(outcome: KeyRotationOutcome, key: ProjectSecretAPIKey,
             live: dict[str, ProjectSecretAPIKey]) -> list[str] | None:
    if outcome.old_key_id and outcome.old_key_id in live:
        _fail(outcome, "the old key still exists: run again")
        return None
    if key.label != outcome.label:
        _fail(outcome, f"the successor is labelled {key.label!r}, not {outcome.label!r}: "
                       "run again")
        return None
    return ["old key deleted", "the successor holds the label"]


def _authenticates(posthog: PostHogClient, outcome: KeyRotationOutcome, key: ProjectSecretAPIKey,
                   block: str | None, verify: bool, checks: list[str]) -> None:
    stored = read_secret(block) if block else None
    if block and (stored is None or mask_of(stored) != key.mask_value):
        _fail(outcome, f"Secret block '{block}' does not hold the live value: run again")
        return
    if block:
        checks.append("Secret block holds it")
    if not verify:
        checks.append("authentication not checked (verify is off)")
    elif not checkable(key):
        checks.append(f"authentication not checked: PostHog checks a secret key only "
                      f"through flag definitions, and this key lacks {CHECK_SCOPE}")
    elif stored is None:
        checks.append("authentication not checked: the value went to a store callback")
    else:
        try:
            outcome.new_value_works = posthog.check_project_secret_api_key(stored)
        except PostHogError as exc:
            _fail(outcome, f"could not check the stored value: {exc}")
            return
        if not outcome.new_value_works:
            _fail(outcome, "the stored value does not authenticate: run again")
            return
        checks.append("it authenticates")
        if outcome.old_value_revoked is False:
            _fail(outcome, "the old value still authenticates")
            return
        if outcome.old_value_revoked:
            checks.append("old value revoked")
    if outcome.action in _OVERLAP_ACTIONS:
        checks.append("the old key keeps working until consumers moved (not checked: a "
                      "check would count as a use)")
    outcome.final_check, outcome.verification = FinalCheck.PASSED, "; ".join(checks)


def check_one(posthog: PostHogClient, outcome: KeyRotationOutcome,
              live: dict[str, ProjectSecretAPIKey], block: str | None, verify: bool) -> None:
    """Decide one written key's final check (`outcome.final_check`)."""
    key = live.get(outcome.id)
    if key is None:
        _fail(outcome, "the key was deleted during the run")
        return
    if key.mask_value != outcome.mask_value or store_time(key) != outcome.rolled_at:
        outcome.final_check = FinalCheck.CHANGED
        return
    checks = [f"live value is the stored {'successor' if outcome.old_key_id else 'roll'}"]
    if outcome.status is KeyStatus.RETIRED or outcome.action is KeyAction.END_OVERLAP:
        retired = _retired(outcome, key, live)
        if retired is None:
            return
        checks += retired
    _authenticates(posthog, outcome, key, block, verify, checks)


@task(name="Check rotated PostHog keys are live", cache_policy=NO_CACHE,
      persist_result=False, retries=0)
def confirm_rotations(
    credentials: PostHogCredentials,
    outcomes: list[KeyRotationOutcome],
    blocks: dict[str, str | None],
    verify: bool = True,
    project_id: int | str | None = None,
) -> list[KeyRotationOutcome]:
    """The final check, read after any late write: each written key's verdict is set
    (`final_check`); `changed` ones are for the flow to write again. `blocks` maps labels
    to the Secret block each value went to (`None`: a store callback, or nowhere)."""
    result = [o.model_copy() for o in outcomes]
    with credentials.get_client(project_id) as posthog:
        live = {k.id: k for k in posthog.iter_project_secret_api_keys()}
        for outcome in result:
            if needs_check(outcome):
                check_one(posthog, outcome, live, blocks.get(outcome.label), verify)
    return result
