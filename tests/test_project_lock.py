"""One secret job per project at a time, in one process (a subflow, a second flow in a
thread): the second run waits or fails naming the first, and never writes meanwhile. The
same across processes on a real Prefect server is in tests/test_secret_jobs_server.py."""

from __future__ import annotations

import threading
import time

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.exceptions import ParameterTypeError

from prefect_posthog.flows import (
    KeySelector,
    ProjectBusyError,
    SharingTarget,
    reset_sharing_passwords,
    rotate_project_secret_api_keys,
)
from prefect_posthog.flows.project_lock import ensure_limit, lock_name
from tests.helpers import until


def applied(emulator, operation: str) -> list[dict]:
    return [r for r in emulator.read_requests() if r["operation"] == operation]


class Holder:
    """A rotation of project 1 that holds the project until the test releases it: its
    `store` callback (called inside the lock, once the roll landed) waits for `release`."""

    def __init__(self, credentials) -> None:
        self.inside, self.release = threading.Event(), threading.Event()
        rotation = rotate_project_secret_api_keys.with_options(flow_run_name="the-holder")
        self.thread = threading.Thread(target=lambda: rotation(
            credentials, KeySelector(labels=["a"]), settle_seconds=0, store=self.store),
            daemon=True)

    def store(self, key, value) -> str:
        self.inside.set()
        assert self.release.wait(timeout=300), "the test never released the holder"
        return "test vault"

    def finish(self) -> None:
        self.release.set()
        self.thread.join(timeout=120)
        assert not self.thread.is_alive()


@pytest.fixture
def held(credentials, emulator):
    emulator.seed({"project_secret_api_keys": [{"label": "a"}, {"label": "b"}],
                   "insights": [{"id": 1}]})
    holder = Holder(credentials)
    holder.thread.start()
    assert holder.inside.wait(timeout=120)
    yield holder
    holder.finish()


def test_a_second_run_fails_naming_the_holder_and_writes_nothing(credentials, emulator,
                                                                 held) -> None:
    with pytest.raises(ProjectBusyError, match="flow run 'the-holder'") as busy:
        rotate_project_secret_api_keys(credentials, KeySelector(labels=["b"]),
                                       lock_timeout_seconds=0)
    assert "Running" in str(busy.value) and "Nothing was changed" in str(busy.value)
    # The reset writes secrets of the same project: it takes the same lock.
    with pytest.raises(ProjectBusyError, match="the-holder"):
        reset_sharing_passwords(credentials, [SharingTarget(resource="insight", id="1")],
                                lock_timeout_seconds=0)
    assert len(applied(emulator, "roll_project_secret_api_key")) == 1  # the holder's only
    assert emulator.read_state()["share_passwords"] == {}


def test_a_second_run_started_as_a_subflow_waits_for_the_holder(credentials, emulator,
                                                                held) -> None:
    @flow
    def pipeline() -> str:
        report = rotate_project_secret_api_keys(credentials, KeySelector(labels=["b"]),
                                                settle_seconds=0, lock_timeout_seconds=300)
        return report.outcomes[0].status

    def release_once_the_pipeline_waits() -> None:
        # The pipeline reads its project just before it asks for the lock.
        until(lambda: len(applied(emulator, "get_project")) >= 2)
        time.sleep(2)
        released_at.append(max(r["seq"] for r in emulator.read_requests()))
        held.release.set()

    released_at: list[int] = []
    releaser = threading.Thread(target=release_once_the_pipeline_waits, daemon=True)
    releaser.start()
    assert pipeline() == "rotated"
    held.finish()
    log = emulator.read_requests()
    rolls = [r["seq"] for r in log if r["operation"] == "roll_project_secret_api_key"]
    # The pipeline works on key b; the holder's last request inside the lock reads key a.
    key_a = next(k["id"] for k in emulator.read_state()["project_secret_api_keys"].values()
                 if k["label"] == "a")
    holders_last = max(r["seq"] for r in log if key_a in r["path"])
    assert len(rolls) == 2 and rolls[1] > holders_last  # after the holder, never during
    assert rolls[1] > released_at[0]  # and it waited: nothing of its own before the release


def test_the_lock_limit_is_created_once_and_repaired(credentials) -> None:
    name = lock_name("https://eu.posthog.com/", 12345)
    assert name == lock_name("https://EU.posthog.com", 12345) != lock_name(
        "https://eu.posthog.com", 12346)
    with get_client(sync_client=True) as client:
        ensure_limit(client, name)
        ensure_limit(client, name)  # already there: nothing to do
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(
            limit=5, slot_decay_per_second=1.0, active=False))
        ensure_limit(client, name)
        limit = client.read_global_concurrency_limit_by_name(name)
    assert (limit.limit, limit.slot_decay_per_second, limit.active) == (1, 0, True)


def test_lock_timeout_is_bounded(credentials, emulator) -> None:
    for bad in (-1, 3601):
        with pytest.raises(ParameterTypeError, match="lock_timeout_seconds"):
            rotate_project_secret_api_keys(credentials, KeySelector(all_keys=True),
                                           lock_timeout_seconds=bad)
