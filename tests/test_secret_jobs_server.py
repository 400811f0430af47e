"""The secret jobs on a real Prefect server, in processes of their own, as hidden checks run
them: a flow process SIGKILLed after PostHog applied a roll (or an overlap's create) and
before the value was stored, then the shipped schedules' parameters run again and repair
it once the killed run's lease expired; two rotations of one project started together from
two processes never interleave, and a third run fails naming the holder.

One server for the module (its repossessor frees a killed run's slot; the test harness's
ephemeral server does not run it). Each scenario gets an emulator of its own: another
host, so another project lock, and the lease waits overlap instead of adding up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.blocks.system import Secret
from prefect.settings import PREFECT_API_URL, temporary_settings

from prefect_posthog import PostHogCredentials
from prefect_posthog.deployments.local import PREFECT_YAML, LocalStack
from prefect_posthog.emulator import Emulator
from prefect_posthog.flows import KeySelector, ProjectBusyError, rotate_project_secret_api_keys
from tests.helpers import ADMIN_KEY, authenticates, until

pytestmark = pytest.mark.server

# A flow run in a process of its own: argv = flow, flow run name, JSON parameters.
RUN = """
import json, sys
from prefect_posthog import flows
getattr(flows, sys.argv[1]).with_options(flow_run_name=sys.argv[2])(**json.loads(sys.argv[3]))
"""
ROTATE, RESET = "rotate_project_secret_api_keys", "reset_sharing_passwords"
STALL = 30.0  # the held answer: far longer than it takes to kill the process


def shipped(deployment: str, schedule: str | None = None) -> dict[str, Any]:
    """A deployment's parameters from prefect.yaml (a schedule's override on top)."""
    [found] = [d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
               if d["name"] == deployment]
    parameters = dict(found["parameters"])
    for entry in found.get("schedules", []):
        if entry.get("slug") == schedule:
            parameters.update(entry.get("parameters", {}))
    return parameters


class Scenario:
    """An emulator with its own blocks on the module's server (`name` names them)."""

    def __init__(self, stack: LocalStack, name: str) -> None:
        self.stack, self.name = stack, name
        self.emulator = Emulator(personal_api_keys={ADMIN_KEY: None}, rate_limit="").start()
        self.processes: list[subprocess.Popen] = []
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            PostHogCredentials(host=self.emulator.url, personal_api_key=ADMIN_KEY,
                               project_id=1, rate_limit="", timeout_seconds=STALL + 10
                               ).save(f"posthog-{name}", overwrite=True)
            CustomWebhookNotificationBlock(
                name=name, url=f"{self.emulator.url}/_emulator/webhook",
                allow_private_urls=True, json_data={"subject": "{{subject}}",
                                                    "body": "{{body}}"}
            ).save(f"notify-{name}", overwrite=True)

    def parameters(self, shipped_parameters: dict[str, Any], **extra: Any) -> dict[str, Any]:
        """The shipped parameters with this scenario's blocks in place of the `$ref`s."""
        return {**shipped_parameters, "credentials": f"posthog-{self.name}",
                "notification": f"custom-webhook/notify-{self.name}", **extra}

    def start(self, run_name: str, parameters: dict[str, Any], job: str = ROTATE
              ) -> subprocess.Popen:
        env = {**os.environ, "PREFECT_API_URL": self.stack.api_url,
               "PREFECT_HOME": str(self.stack.home)}
        log = (self.stack.home / f"{run_name}.log").open("w")
        proc = subprocess.Popen([sys.executable, "-c", RUN, job, run_name,
                                 json.dumps(parameters)],
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.processes.append(proc)
        return proc

    def requests(self, operation: str | None = None) -> list[dict]:
        return [r for r in self.emulator.read_requests()
                if operation is None or r["operation"] == operation]

    def live_keys(self) -> dict[str, dict]:
        return {k["label"]: k
                for k in self.emulator.read_state()["project_secret_api_keys"].values()}

    def stored(self, label: str, template: str = "posthog-psak-{}") -> str:
        with temporary_settings({PREFECT_API_URL: self.stack.api_url}):
            return Secret.load(template.format(label)).get()

    def opens_share(self, password: str) -> bool:
        """Whether the insight's share link opens with `password` (PostHog's viewer)."""
        [config] = [c for c in self.emulator.read_state()["sharing"].values()
                    if c["expires_at"] is None]
        return httpx.post(f"{self.emulator.url}/shared/{config['access_token']}",
                          json={"password": password}).json().get("shareToken") is not None

    def seed_stored(self, **keys: dict[str, Any]) -> dict[str, str]:
        """Seed keys (label → spec) and store each value in its Secret block."""
        seeded = self.emulator.seed({"project_secret_api_keys": [
            {"label": label, **spec} for label, spec in keys.items()]})
        values = {k["label"]: k["value"] for k in seeded["project_secret_api_keys"]}
        with temporary_settings({PREFECT_API_URL: self.stack.api_url}):
            for label, value in values.items():
                Secret(value=value).save(f"posthog-psak-{label}", overwrite=True)
        return values

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.emulator.stop()


def ended(proc: subprocess.Popen, stack: LocalStack, name: str, seconds: float = 300) -> int:
    try:
        return proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{name} did not end:\n"
                             + (stack.home / f"{name}.log").read_text()[-3000:]) from None


def kill_when_applied(scenario: Scenario, operation: str, proc: subprocess.Popen) -> None:
    """SIGKILL the flow process once PostHog applied `operation` (its answer is held)."""
    assert until(lambda: [r for r in scenario.requests(operation) if r["fault"] == "stall"]), \
        (scenario.stack.home / f"killed-{scenario.name}.log").read_text()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[LocalStack]:
    # The repossessor checks leases every second (Prefect's default: 15 s) and a waiter
    # polls at most every 2 s, so a killed run's project frees ~60 s after its last renewal.
    local = LocalStack(tmp_path_factory.mktemp("prefect-secret-jobs"), port=0,
                       env={"PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": "1",
                            "PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS":
                            "2"})
    local.start_server()
    yield local
    local.down()


@pytest.fixture(scope="module")
def killed(stack) -> Iterator[dict[str, Any]]:
    """Runs SIGKILLed mid-write, and the shipped schedules started again at once: the weekly
    roll of flags-* keys, the overlap rotation and a share password reset, each on an
    emulator of its own."""
    roll, overlap, reset = Scenario(stack, "roll"), Scenario(stack, "overlap"), Scenario(
        stack, "reset")
    try:
        # Distinct labels: the scenarios share the Prefect server, so their Secret blocks.
        old = {"roll": roll.seed_stored(**{"flags-roll": {"created_days_ago": 40}}),
               "overlap": overlap.seed_stored(**{"flags-swap": {"created_days_ago": 40}})}
        for scenario, operation in ((roll, "roll_project_secret_api_key"),
                                    (overlap, "create_project_secret_api_key")):
            scenario.emulator.set_faults(stall_seconds=STALL, schedule=[
                {"operation": operation, "fault": "stall"}])
        parameters = {"roll": shipped("monthly"), "overlap": shipped("overlap")}
        procs = {s.name: s.start(f"killed-{s.name}", s.parameters(parameters[s.name]))
                 for s in (roll, overlap)}
        # The reset: its new password stored, then protection turned on, killed before
        # PostHog has the password: the stored password opens nothing.
        reset.emulator.seed({"insights": [{"id": 1}], "sharing": [
            {"resource": "insight", "id": 1, "enabled": True}]})
        reset.emulator.set_faults(stall_seconds=STALL, schedule=[
            {"operation": "update_sharing", "fault": "stall"}])
        reset_parameters = reset.parameters(shipped("reset-share-passwords"),
                                            targets=[{"resource": "insight", "id": "1"}])
        procs["reset"] = reset.start("killed-reset", reset_parameters, RESET)
        kill_when_applied(roll, "roll_project_secret_api_key", procs["roll"])
        kill_when_applied(overlap, "create_project_secret_api_key", procs["overlap"])
        kill_when_applied(reset, "update_sharing", procs["reset"])
        # What the killed runs left: the roll landed, its value died with the process
        # (consumers hold a dead key); the successor exists, stored nowhere; the stored
        # share password opens nothing.
        broken = {
            "roll": {"block holds the old value": roll.stored("flags-roll") == old["roll"][
                "flags-roll"], "old value dead": not authenticates(
                    roll.emulator.url, old["roll"]["flags-roll"])},
            "overlap": {"block holds the old value": overlap.stored("flags-swap") == old[
                "overlap"]["flags-swap"], "successor exists": "flags-swap~next" in
                overlap.live_keys()},
            "reset": {"stored password opens nothing": not reset.opens_share(
                reset.stored("insight-1", "posthog-share-{}"))}}
        # The next runs of the shipped schedules: the weekly one (young keys too) and the
        # overlap one; the reset as it was started.
        reruns = {"roll": roll.start("rerun-roll", roll.parameters(
                      shipped("monthly", "weekly-flag-keys"))),
                  "overlap": overlap.start("rerun-overlap", overlap.parameters(
                      shipped("overlap"))),
                  "reset": reset.start("rerun-reset", reset_parameters, RESET)}
        yield {"roll": roll, "overlap": overlap, "reset": reset, "old": old,
               "broken": broken, "reruns": reruns}
    finally:
        for scenario in (roll, overlap, reset):
            scenario.close()


def test_two_rotations_started_together_never_interleave(stack, killed) -> None:
    # (`killed` first: its reruns wait out the killed runs' leases meanwhile.)
    scenario = Scenario(stack, "pair")
    try:
        scenario.seed_stored(**{label: {"created_days_ago": 40}
                                for label in ("a-1", "a-2", "b-1", "b-2")})
        # The first two rolls' answers are held 10 s: the run that got the project first
        # holds it at least 20 s, ample for the third run below to find it held even on a
        # loaded machine (without the lock, the other run would roll in between).
        scenario.emulator.set_faults(stall_seconds=10, schedule=[
            {"operation": "roll_project_secret_api_key", "fault": "stall", "count": 2}])
        ids = {label: key["id"] for label, key in scenario.live_keys().items()}
        first = scenario.start("first", scenario.parameters(
            {"selector": {"label_pattern": "a-*"}}, settle_seconds=0))
        second = scenario.start("second", scenario.parameters(
            {"selector": {"label_pattern": "b-*"}}, settle_seconds=0))
        assert until(lambda: scenario.requests("roll_project_secret_api_key"))
        # A third run that will not wait is refused, naming the run holding the project.
        with temporary_settings({PREFECT_API_URL: stack.api_url}), \
                pytest.raises(ProjectBusyError, match=r"flow run '(first|second)'") as busy:
            rotate_project_secret_api_keys(f"posthog-{scenario.name}",
                                           KeySelector(labels=["a-1"]), lock_timeout_seconds=0)
        assert "Nothing was changed" in str(busy.value)
        assert ended(first, stack, "first") == 0 and ended(second, stack, "second") == 0
        by_key = {ids[label]: label[0] for label in ids}
        touched = [(r["seq"], by_key[key]) for r in scenario.requests()
                   for key in by_key if key in r["path"]]
        order = [run for _, run in sorted(touched)]
        # One run's reads and writes of its keys all come before the other's first.
        assert order == sorted(order) or order == sorted(order, reverse=True), order
        assert len(scenario.requests("roll_project_secret_api_key")) == 4  # none repeated
        for label in ids:
            assert authenticates(scenario.emulator.url, scenario.stored(label))
    finally:
        scenario.close()


def test_a_run_killed_between_roll_and_store_is_repaired_by_the_weekly_run(killed) -> None:
    roll: Scenario = killed["roll"]
    old = killed["old"]["roll"]["flags-roll"]
    # The roll landed, its value died with the process.
    assert all(killed["broken"]["roll"].values()), killed["broken"]
    rerun = killed["reruns"]["roll"]
    assert ended(rerun, roll.stack, "rerun-roll") == 0
    stored = roll.stored("flags-roll")
    assert stored != old and authenticates(roll.emulator.url, stored)
    assert roll.live_keys()["flags-roll"]["mask_value"] == f"{stored[:4]}...{stored[-4:]}"
    # The killed run never released the project: its lease expired, as the rerun's
    # completion shows.
    [message] = roll.emulator.admin("GET", "webhook")
    assert "flags-roll" in message["body"] and "repaired" in message["body"]


def test_an_overlap_killed_between_create_and_store_converges(killed) -> None:
    overlap: Scenario = killed["overlap"]
    old = killed["old"]["overlap"]["flags-swap"]
    # The successor's value died with the process.
    assert all(killed["broken"]["overlap"].values()), killed["broken"]
    rerun = killed["reruns"]["overlap"]
    assert ended(rerun, overlap.stack, "rerun-overlap") == 0
    keys = overlap.live_keys()
    stored = overlap.stored("flags-swap")
    assert set(keys) == {"flags-swap", "flags-swap~next"}  # never two successors
    assert keys["flags-swap~next"]["mask_value"] == f"{stored[:4]}...{stored[-4:]}"
    assert authenticates(overlap.emulator.url, stored)
    assert authenticates(overlap.emulator.url, old)  # the old key keeps working
    creates = overlap.requests("create_project_secret_api_key")
    assert len(creates) == 1  # the successor was rolled to learn a value, not created again



def test_a_reset_killed_mid_way_converges_when_run_again(killed) -> None:
    reset: Scenario = killed["reset"]
    # Stored first, protection on, PostHog lacks the password.
    assert all(killed["broken"]["reset"].values()), killed["broken"]
    rerun = killed["reruns"]["reset"]
    assert ended(rerun, reset.stack, "rerun-reset") == 0
    password = reset.stored("insight-1", "posthog-share-{}")
    assert reset.opens_share(password)
    [share] = [c for c in reset.emulator.read_state()["sharing"].values()
               if c["expires_at"] is None]
    active = [p for p in reset.emulator.read_state()["share_passwords"].values()
              if p["is_active"] and p["config"] == share["id"]]
    assert len(active) == 1  # the stored one alone: the killed run's leftovers removed
