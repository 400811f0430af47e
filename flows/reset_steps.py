"""The steps of a sharing-password reset: read the targets, reset one share, check them all.

Per share, the password is stored first (a secret the job makes is stored where consumers
read it as soon as it exists); then password protection is turned on, the password created
in PostHog (a lost create is found by this run's unique note: same value, chosen here), the
other passwords removed and the link optionally rotated. If PostHog never took the password,
the share and the stored value are rolled back; once it has, the stored password is the
working one whatever fails later. A run killed between any two steps leaves at worst a
stored password PostHog lacks or a stray one in PostHog; the next run stores a new one,
creates it, and removes every other, so it converges.
"""

from __future__ import annotations

import time

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import (
    FeatureNotAvailableError,
    InvalidInputError,
    NotFoundError,
    OutcomeUnknownError,
    PostHogClient,
    PostHogError,
    ProjectNotFoundError,
    SharingConfiguration,
    UnexpectedResponseError,
)
from prefect_posthog.flows.models import (
    PasswordResetOutcome,
    ResetStatus,
    SharingTarget,
    StoredPassword,
)
from prefect_posthog.flows.preflight import project_or_fail
from prefect_posthog.flows.secret_store import read_secret, restore_secret, write_secret

MAX_CREATES = 3
_UNKNOWN = (OutcomeUnknownError, UnexpectedResponseError)
Target = tuple[str, str]


def read_targets(credentials: PostHogCredentials, targets: list[SharingTarget],
                 project_id: int | None) -> dict[Target, SharingConfiguration]:
    """Read every target's sharing once: the project and every target must exist.

    Raises:
        InvalidInputError: The project (naming `project_id`) or targets do not exist.
    """
    found, missing = {}, []
    with credentials.get_client(project_id) as posthog:

        def read(target: SharingTarget) -> SharingConfiguration | None:
            try:
                return posthog.get_sharing(target.resource, target.id)
            except ProjectNotFoundError:
                raise
            except NotFoundError as exc:
                if exc.type is None:  # not PostHog's error shape: the host is wrong
                    raise
                return None  # "Insight not found." and the like

        for target in targets:
            config = project_or_fail(credentials, project_id, lambda t=target: read(t))
            if config is None:
                missing.append(f"{target.resource} {target.id}")
            else:
                found[(target.resource, target.id)] = config
    if missing:
        raise InvalidInputError("targets", "not found in the project: " + ", ".join(missing)
                                + ". Nothing was changed")
    return found


def _create_reconciled(posthog: PostHogClient, target: SharingTarget, password: SecretStr,
                       note: str, settle_seconds: float) -> tuple[int, bool]:
    """Create the password; after an unknown outcome, wait for a late landing and adopt the
    password carrying this run's note (same value: it was chosen here), else create again.
    """
    reconciled = False
    for _ in range(MAX_CREATES):
        try:
            created = posthog.create_sharing_password(target.resource, target.id,
                                                      raw_password=password, note=note)
            return created.id, reconciled
        except _UNKNOWN:
            reconciled = True
            time.sleep(settle_seconds)
            ours = [p.id for p in posthog.get_sharing(target.resource, target.id).share_passwords
                    if p.note == note]
            if ours:
                return ours[0], True
    raise OutcomeUnknownError("create_sharing_password", f"{MAX_CREATES} creations unconfirmed")


def _refresh_reconciled(posthog: PostHogClient, target: SharingTarget, before: str | None,
                        settle_seconds: float) -> bool:
    """Rotate the link; after an unknown outcome, a changed token proves it happened."""
    try:
        posthog.refresh_sharing(target.resource, target.id)
        return False
    except _UNKNOWN:
        time.sleep(settle_seconds)
        if posthog.get_sharing(target.resource, target.id).access_token == before:
            posthog.refresh_sharing(target.resource, target.id)
        return True


def _roll_back(posthog: PostHogClient, target: SharingTarget, block: str | None,
               previous: SecretStr | None, turned_on: bool) -> tuple[StoredPassword, str]:
    """Undo a reset PostHog never took: the share's protection flag, then the stored value."""
    problems = []
    if turned_on:
        try:
            posthog.update_sharing(target.resource, target.id, password_required=False)
        except PostHogError as exc:
            problems.append(f"password protection stays on ({type(exc).__name__})")
    if block:
        try:
            restore_secret(block, previous)
        except Exception as exc:  # report, never raise with text
            problems.append(f"the stored password could not be restored ({type(exc).__name__})")
    if problems:
        return StoredPassword.ROLLBACK_INCOMPLETE, "; ".join(problems)
    return StoredPassword.ROLLED_BACK, ""


def _give_to_posthog(posthog: PostHogClient, outcome: PasswordResetOutcome,
                     target: SharingTarget, password: SecretStr, block: str | None,
                     previous: SecretStr | None, settle: float) -> bool:
    """Protection on and the password created; on failure roll back and say so."""
    turned_on = False
    try:
        if not posthog.get_sharing(target.resource, target.id).password_required:
            posthog.update_sharing(target.resource, target.id, password_required=True)
            turned_on = True
        outcome.password_id, outcome.reconciled = _create_reconciled(
            posthog, target, password, outcome.note or "", settle)
        return True
    except PostHogError as exc:
        outcome.reason = str(exc) + (
            " — password-protected sharing needs the organization's Advanced Permissions "
            "feature" if isinstance(exc, FeatureNotAvailableError) else "")
        outcome.stored_secret, problems = _roll_back(posthog, target, block, previous,
                                                     turned_on)
        if problems:
            outcome.reason += f"; {problems}"
        outcome.stored_in = None
        return False


@task(name="Reset one PostHog share password", cache_policy=NO_CACHE, persist_result=False,
      retries=0, task_run_name="reset-{target.resource}-{target.id}")
def reset_password(
    credentials: PostHogCredentials,
    target: SharingTarget,
    note: str,
    password: SecretStr,
    secret_block: str | None,
    refresh_link: bool = False,
    settle_seconds: float = 0.0,
    project_id: int | str | None = None,
) -> PasswordResetOutcome:
    """Store the new password, then give it to PostHog, remove the others and optionally
    rotate the link. The password is never returned."""
    outcome = PasswordResetOutcome(resource=target.resource, id=target.id,
                                   status=ResetStatus.FAILED, note=note)
    previous = read_secret(secret_block)
    if secret_block:
        try:
            write_secret(secret_block, password)
        except Exception as exc:  # storage failure: nothing was changed in PostHog yet
            outcome.reason = f"storing the new password failed ({type(exc).__name__})"
            outcome.stored_secret = StoredPassword.UNCHANGED
            return outcome
        outcome.stored_in = f"Secret block '{secret_block}'"
    with credentials.get_client(project_id) as posthog:
        if not _give_to_posthog(posthog, outcome, target, password, secret_block, previous,
                                settle_seconds):
            return outcome
        # PostHog holds the new password and the store has it: it is the working one now.
        try:
            for old in posthog.get_sharing(target.resource, target.id).share_passwords:
                if old.note != note:
                    posthog.delete_sharing_password(target.resource, target.id, old.id)
                    outcome.removed_passwords += 1
            if refresh_link:
                before = posthog.get_sharing(target.resource, target.id).access_token
                again = _refresh_reconciled(posthog, target, before, settle_seconds)
                outcome.link_refreshed = True
                outcome.reconciled = outcome.reconciled or again
        except PostHogError as exc:
            outcome.reason = f"new password set and stored, then: {exc}"
            outcome.stored_secret = StoredPassword.WORKS
            return outcome
    outcome.status = ResetStatus.RESET  # provisional: the final check decides
    return outcome


def _converge(posthog: PostHogClient, outcome: PasswordResetOutcome, host: str) -> None:
    for _ in range(3):
        config = posthog.get_sharing(outcome.resource, outcome.id)
        ours = [p for p in config.share_passwords if p.note == outcome.note]
        if not config.password_required or not ours:
            outcome.status = ResetStatus.FAILED
            outcome.reason = ("the new password is no longer active" if not ours else
                              "password protection was turned off")
            return
        outcome.password_id = ours[0].id
        strays = [p for p in config.share_passwords if p.id != outcome.password_id]
        if not strays:
            outcome.share_url = f"{host}/shared/{config.access_token}"
            return
        for stray in strays:
            posthog.delete_sharing_password(outcome.resource, outcome.id, stray.id)
            if stray.note != outcome.note:  # a late copy of ours is not an old password
                outcome.removed_passwords += 1
    outcome.status, outcome.reason = ResetStatus.FAILED, "passwords kept appearing; run again"


def _still_stored(outcome: PasswordResetOutcome, block: str | None,
                  password: SecretStr) -> bool:
    if not block or read_secret(block) == password:
        return True
    # Something else wrote the block during the run: what consumers read is not live.
    outcome.status = ResetStatus.FAILED
    outcome.reason = (f"Secret block '{block}' was overwritten during the run and no longer "
                      "holds the live password: run again")
    outcome.stored_secret = StoredPassword.NOT_WORKING
    return False


@task(name="Check reset PostHog share passwords", cache_policy=NO_CACHE,
      persist_result=False, retries=0)
def confirm_resets(
    credentials: PostHogCredentials,
    outcomes: list[PasswordResetOutcome],
    stored: dict[Target, tuple[str | None, SecretStr]],
    project_id: int | str | None = None,
) -> list[PasswordResetOutcome]:
    """The final check, read after any late write: the Secret block still holds this
    run's password, protection is on, that password is the only active one (late
    duplicates and other passwords are removed until that holds) and `share_url` is the
    live link. `stored` maps each target to its block and this run's password."""
    result = []
    with credentials.get_client(project_id) as posthog:
        for outcome in outcomes:
            outcome = outcome.model_copy()
            result.append(outcome)
            block, password = stored[(outcome.resource, outcome.id)]
            if outcome.status is not ResetStatus.RESET or not _still_stored(outcome, block,
                                                                            password):
                continue
            try:
                _converge(posthog, outcome, credentials.host)
            except PostHogError as exc:
                outcome.status, outcome.reason = (ResetStatus.FAILED,
                                                  f"final check failed: {exc}")
                outcome.stored_secret = StoredPassword.WORKS
    return result
