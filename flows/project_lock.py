"""One secret job per PostHog project at a time, however the runs were started.

Two runs writing the same project's secrets fight: each roll kills the value the other just
stored, so consumers see a string of dead keys even when the end state is right. The
deployments' `concurrency_limit` covers runs of one deployment only; a subflow, a second
deployment or a manual run would slip past it. So every run that writes a project's secrets
(rotation, reset, audit) takes this lock first: a Prefect global concurrency limit with
`limit=1` and no slot decay, one per PostHog host and project, held under a lease.

- Name: `posthog-project-<16 hex of sha256(host|project)>`, created on first use (Prefect
  does not create limits by itself; `strict=True` refuses a missing one) and repaired if
  someone changed it (`limit`, `slot_decay_per_second`, `active`).
- Lease: `LOCK_LEASE_SECONDS` (60 s, Prefect's minimum), renewed every 45 s by Prefect.
  A killed run never releases it: the server's repossessor (every 15 s) frees the slot once
  the lease expired, at most 60 s after its last renewal (15-60 s after the kill), plus the
  waiter's next poll (up to ~30 s). A short lease keeps a crashed run's hold short; a
  Prefect server restart keeps it only with the filesystem lease storage (see README).
- Renewal failure (the Prefect API unreachable for longer than the lease) does not cancel
  the run (`raise_on_lease_renewal_failure=False`): cancelling mid-rotation could stop it
  between a roll and its store, leaving consumers a dead key until the next run repairs
  it; carrying on risks a second run only if one starts during such an outage.
- Holder: the lease records the flow run (`ConcurrencyLeaseHolder(type="flow_run")`), and
  the holder writes its flow run id into the Prefect Variable of the same name; Prefect
  3.9's API cannot list a global limit's flow-run holders, so a run that cannot get the
  lock reads the Variable and names that flow run (name, state, deployment).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
    VariableCreate,
    VariableUpdate,
)
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound, PrefectHTTPStatusError
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from prefect_posthog.client import InvalidInputError

LOCK_LEASE_SECONDS = 60
DEFAULT_LOCK_TIMEOUT_SECONDS = 600.0
MAX_LOCK_TIMEOUT_SECONDS = 3600.0


class ProjectBusyError(RuntimeError):
    """Another run holds the project: this run waited `lock_timeout_seconds` and changed
    nothing.

    Attributes:
        project: The PostHog project.
        holder: The flow run holding it, as people read it (name, id, state, deployment).
    """

    def __init__(self, project: str, holder: str, waited: float) -> None:
        self.project, self.holder, self.waited = project, holder, waited
        super().__init__(f"project {project} is held by {holder}; gave up after "
                         f"{waited:.0f}s (lock_timeout_seconds). Nothing was changed")

    def __reduce__(self) -> tuple[Any, ...]:
        # Prefect pickles a failed run's exception: rebuild it from its fields.
        return (ProjectBusyError, (self.project, self.holder, self.waited))


def lock_name(host: str, project: int | str) -> str:
    """The limit's (and the holder Variable's) name for one PostHog host and project."""
    digest = hashlib.sha256(f"{host.rstrip('/').lower()}|{project}".encode()).hexdigest()
    return f"posthog-project-{digest[:16]}"


def lock_timeout(seconds: float | None) -> float:
    """The wait for a busy project, checked: 0 tries once, at most an hour."""
    if seconds is None:
        return DEFAULT_LOCK_TIMEOUT_SECONDS
    if not 0 <= seconds <= MAX_LOCK_TIMEOUT_SECONDS:
        raise InvalidInputError("lock_timeout_seconds", f"must be from 0 (try once) to "
                                f"{MAX_LOCK_TIMEOUT_SECONDS:.0f} seconds")
    return float(seconds)


def ensure_limit(client: SyncPrefectClient, name: str) -> None:
    """Create the limit if missing (race-safe: a 409 means another run created it) and
    repair it if it would not exclude: `limit=1`, no slot decay, active."""
    try:
        current = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                name=name, limit=1, active=True, slot_decay_per_second=0.0))
            return
        except ObjectAlreadyExists:
            current = client.read_global_concurrency_limit_by_name(name)
    if current.limit != 1 or current.slot_decay_per_second != 0 or not current.active:
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(
            limit=1, slot_decay_per_second=0.0, active=True))


def _record_holder(client: SyncPrefectClient, name: str, run_id: str) -> None:
    if client.read_variable_by_name(name) is None:
        try:
            client.create_variable(VariableCreate(name=name, value=run_id,
                                                  tags=["posthog-project-lock"]))
            return
        except ObjectAlreadyExists:
            pass
    client.update_variable(VariableUpdate(name=name, value=run_id))


def describe_holder(client: SyncPrefectClient, name: str) -> str:
    """The flow run the holder Variable names, as people read it."""
    variable = client.read_variable_by_name(name)
    if variable is None or not isinstance(variable.value, str):
        return "another run (not recorded)"
    try:
        run = client.read_flow_run(UUID(variable.value))
    except (ObjectNotFound, ValueError):
        return f"flow run {variable.value}"
    if run.state is not None and run.state.is_completed():
        # A new holder writes the Variable a moment after acquiring; until then it names
        # the last one, which released the project when it completed.
        return (f"a run that took the project a moment ago (the last recorded holder, "
                f"flow run '{run.name}', completed)")
    where = ""
    if run.deployment_id is not None:
        try:
            where = f", deployment '{client.read_deployment(run.deployment_id).name}'"
        except ObjectNotFound:
            where = f", deployment {run.deployment_id}"
    return f"flow run '{run.name}' ({run.id}, {run.state_name}{where})"


def _is_busy(exc: ConcurrencySlotAcquisitionError) -> bool:
    # With retries exhausted the server's 423 Locked comes back as the cause; any other
    # cause (no server, a missing limit, a database error) is a real error.
    cause = exc.__cause__
    return isinstance(cause, PrefectHTTPStatusError) and cause.response.status_code == 423


@contextmanager
def project_lock(host: str, project: int | str, timeout_seconds: float) -> Iterator[None]:
    """Hold the project for the body; wait up to `timeout_seconds` (0: try once).

    Raises:
        ProjectBusyError: Another run holds the project (named in the message).
    """
    name = lock_name(host, project)
    run_id = flow_run.get_id()
    holder = ConcurrencyLeaseHolder(type="flow_run", id=UUID(run_id)) if run_id else None
    wait: dict[str, Any] = ({"max_retries": 0} if timeout_seconds == 0
                            else {"timeout_seconds": timeout_seconds})
    started = time.monotonic()
    with get_client(sync_client=True) as client:
        ensure_limit(client, name)
        stack = ExitStack()
        try:
            stack.enter_context(concurrency(
                name, occupy=1, strict=True, holder=holder, lease_duration=LOCK_LEASE_SECONDS,
                raise_on_lease_renewal_failure=False, **wait))
        except (TimeoutError, ConcurrencySlotAcquisitionError) as exc:
            if isinstance(exc, ConcurrencySlotAcquisitionError) and not _is_busy(exc):
                raise
            raise ProjectBusyError(str(project), describe_holder(client, name),
                                   time.monotonic() - started) from None
        with stack:
            if run_id:
                _record_holder(client, name, run_id)
            get_run_logger().info("Holding project %s (concurrency limit %s) after %.1fs",
                                  project, name, time.monotonic() - started)
            yield
