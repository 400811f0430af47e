"""The secret jobs at the edges: storage collisions, writes that land after the client gave
up, failures after the point of no return, selectors that must not over-reach, and a
hostile server echoing secrets everywhere. Each test checks the emulator's final state and
the stored secrets, not only what the flow reports."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import yaml
from prefect.blocks.system import Secret
from prefect.exceptions import ParameterTypeError
from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_LOCAL_STORAGE_PATH,
    PREFECT_RESULTS_PERSIST_BY_DEFAULT,
    temporary_settings,
)

from prefect_posthog.client import InvalidInputError
from prefect_posthog.flows import (
    GroupPropertyUpdate,
    KeySelector,
    SharingTarget,
    bulk_update_group_properties,
    reset_sharing_passwords,
    rotate_project_secret_api_keys,
)
from prefect_posthog.flows.reset_passwords import ROLLED_BACK, STORED_WORKS
from tests.helpers import (
    ADMIN_KEY,
    HostileProxy,
    flags_status,
    last_artifact_rows,
    prefect_records,
    storage_text,
)

ROOT = Path(__file__).resolve().parents[1]


def key_state(emulator) -> dict[str, dict]:
    return {k["label"]: k for k in emulator.read_state()["project_secret_api_keys"].values()}


def authenticates(emulator, value: str) -> bool:
    return flags_status(emulator.url, value) == 200


def viewer(emulator, url: str, password: str) -> int:
    token = url.rsplit("/", 1)[1]
    return httpx.post(f"{emulator.url}/shared/{token}", json={"password": password}).status_code


def applied(emulator, operation: str) -> list[dict]:
    """Requests the emulator applied (late ones included), of one operation."""
    return [r for r in emulator.read_requests() if r["operation"] == operation
            and r["status"] not in ("dropped",)]


# -- never lose a secret: storage collisions ---------------------------------------------------

def test_colliding_secret_block_names_are_refused_before_any_roll(credentials, emulator) -> None:
    emulator.seed({"project_secret_api_keys": [{"label": "Team A"}, {"label": "team-a"},
                                               {"label": "other"}]})
    for selector in (KeySelector(all_keys=True), KeySelector(labels=["Team A"])):
        # Also when only one of the two is selected: it would overwrite the other's block.
        with pytest.raises(InvalidInputError, match=r"Team A.*team-a") as info:
            rotate_project_secret_api_keys(credentials, selector)
        assert info.value.field == "secret_block_name_template"
    assert all(k["last_rolled_at"] is None for k in key_state(emulator).values())
    # With {id} in the template every key has a place of its own.
    report = rotate_project_secret_api_keys(credentials, KeySelector(labels=["Team A"]),
                                            secret_block_name_template="psak-{label}-{id}")
    assert report.outcomes[0].status == "rotated"


@pytest.mark.parametrize("template", ["psak-{nope}", "PSAK/{label}", "psak-{label}-"])
def test_invalid_block_name_templates_are_refused(credentials, emulator, template) -> None:
    emulator.seed({"project_secret_api_keys": [{"label": "k"}]})
    with pytest.raises(InvalidInputError) as info:
        rotate_project_secret_api_keys(credentials, KeySelector(labels=["k"]),
                                       secret_block_name_template=template)
    assert info.value.field == "secret_block_name_template"
    assert key_state(emulator)["k"]["last_rolled_at"] is None


def test_reset_refuses_shared_names_repeats_and_empty_targets(credentials, emulator) -> None:
    emulator.seed({"insights": [{"id": 1}, {"id": 2}]})
    two = [SharingTarget(resource="insight", id="1"), SharingTarget(resource="insight", id="2")]
    with pytest.raises(InvalidInputError, match="insight 1 and insight 2"):
        reset_sharing_passwords(credentials, two, secret_block_name_template="share-pw")
    with pytest.raises(InvalidInputError, match="twice"):
        reset_sharing_passwords(credentials, [two[0], two[0]])
    # The form's schema says minItems 1; a call from code is refused the same way.
    with pytest.raises(ParameterTypeError, match="targets"):
        reset_sharing_passwords(credentials, [])
    assert emulator.read_state()["share_passwords"] == {}


# -- never lose a secret: writes that land after the client gave up ----------------------------

@pytest.fixture
def impatient(credentials):
    """Credentials whose client gives up after two seconds.

    The late-landing tests below time their faults against it and a 4 s settle: the late
    write lands between the client's reconciliation (~6 s) and its final check (>= 10 s),
    with 2 s to spare either side on a loaded machine."""
    return credentials.model_copy(update={"timeout_seconds": 2.0})


def test_late_landing_roll_is_converged_until_the_stored_value_is_live(impatient,
                                                                       emulator) -> None:
    emulator.seed({"project_secret_api_keys": [{"label": "svc"}]})
    # The first roll is applied 8 s after it arrives: the client has given up at 2 s,
    # reconciles after the 4 s settle and rolls again at ~6 s; then the late roll lands and
    # kills the value just stored. Only the final check can see it.
    emulator.set_faults(late_seconds=8, schedule=[{"operation": "roll_project_secret_api_key",
                                                   "fault": "late"}])
    report = rotate_project_secret_api_keys(impatient, KeySelector(labels=["svc"]),
                                            settle_seconds=4.0)
    [outcome] = report.outcomes
    assert outcome.status == "rotated" and outcome.reconciled
    assert len(applied(emulator, "roll_project_secret_api_key")) == 3  # late, again, converge
    stored = Secret.load("posthog-psak-svc").get()
    assert authenticates(emulator, stored)
    live = key_state(emulator)["svc"]
    assert live["mask_value"] == f"{stored[:4]}...{stored[-4:]}" == outcome.mask_value
    assert "live value is the stored roll" in outcome.verification


def test_late_landing_roll_waited_out_needs_no_extra_roll(impatient, emulator) -> None:
    emulator.seed({"project_secret_api_keys": [{"label": "svc"}]})
    # It lands at 3 s, well inside the 4 s settle after the client gave up at 2 s.
    emulator.set_faults(late_seconds=3, schedule=[{"operation": "roll_project_secret_api_key",
                                                   "fault": "late"}])
    report = rotate_project_secret_api_keys(impatient, KeySelector(labels=["svc"]),
                                            settle_seconds=4.0)
    assert report.outcomes[0].status == "rotated"
    assert len(applied(emulator, "roll_project_secret_api_key")) == 2
    assert authenticates(emulator, Secret.load("posthog-psak-svc").get())


@pytest.fixture
def protected(emulator):
    emulator.seed({"insights": [{"id": 1}, {"id": 2}], "sharing": [
        {"resource": "insight", "id": 1, "enabled": True, "password_required": True,
         "passwords": ["old-password-1"]}]})


def test_late_landing_password_create_leaves_one_active_password(impatient, emulator,
                                                                 protected) -> None:
    emulator.set_faults(late_seconds=8, schedule=[{"operation": "create_sharing_password",
                                                   "fault": "late"}])
    report = reset_sharing_passwords(impatient, [SharingTarget(resource="insight", id="1")],
                                     settle_seconds=4.0)
    [outcome] = report.targets
    assert outcome.status == "reset" and outcome.reconciled
    assert len(applied(emulator, "create_sharing_password")) == 2  # the late one landed too
    with impatient.get_client() as posthog:
        live = posthog.get_sharing("insight", 1)
    assert [p.id for p in live.share_passwords] == [outcome.password_id]  # stray removed
    password = Secret.load("posthog-share-insight-1").get()
    assert viewer(emulator, outcome.share_url, password) == 200
    assert viewer(emulator, outcome.share_url, "old-password-1") == 401


def test_late_landing_link_refresh_reports_the_live_link(impatient, emulator,
                                                         protected) -> None:
    emulator.set_faults(late_seconds=8, schedule=[{"operation": "refresh_sharing",
                                                   "fault": "late"}])
    report = reset_sharing_passwords(impatient, [SharingTarget(resource="insight", id="1")],
                                     refresh_link=True, settle_seconds=4.0)
    [outcome] = report.targets
    assert outcome.status == "reset" and outcome.link_refreshed
    assert len(applied(emulator, "refresh_sharing")) == 2
    with impatient.get_client() as posthog:
        live = posthog.get_sharing("insight", 1)
    assert outcome.share_url.endswith(f"/shared/{live.access_token}")
    assert viewer(emulator, outcome.share_url, Secret.load("posthog-share-insight-1").get()) == 200


# -- never lose a secret: the store comes first ------------------------------------------------

def test_failure_after_the_point_of_no_return_keeps_the_stored_password_working(
        credentials, emulator, protected) -> None:
    emulator.set_faults(schedule=[{"operation": "refresh_sharing", "fault": "500",
                                   "count": 10}])
    with pytest.raises(RuntimeError, match="1 target"):
        reset_sharing_passwords(credentials, [SharingTarget(resource="insight", id="1")],
                                refresh_link=True, settle_seconds=0)
    [outcome] = last_artifact_rows("posthog-password-reset")
    assert outcome["status"] == "failed" and outcome["stored_secret"] == STORED_WORKS
    with credentials.get_client() as posthog:
        live = posthog.get_sharing("insight", 1)
    assert live.password_required and len(live.share_passwords) == 1
    url = f"{credentials.host}/shared/{live.access_token}"
    assert viewer(emulator, url, Secret.load("posthog-share-insight-1").get()) == 200


def test_failure_before_posthog_holds_the_password_is_rolled_back(credentials,
                                                                  emulator) -> None:
    emulator.seed({"insights": [{"id": 2}], "sharing": [
        {"resource": "insight", "id": 2, "enabled": True, "password_required": False}]})
    Secret(value="previous-password-2").save("posthog-share-insight-2", overwrite=True)
    emulator.set_faults(schedule=[{"operation": "create_sharing_password", "fault": "500",
                                   "count": 10}])
    with pytest.raises(RuntimeError, match="1 target"):
        reset_sharing_passwords(credentials, [SharingTarget(resource="insight", id="2")],
                                settle_seconds=0)
    [outcome] = last_artifact_rows("posthog-password-reset")
    assert outcome["stored_secret"] == ROLLED_BACK and outcome["stored_in"] == "-"
    assert Secret.load("posthog-share-insight-2").get() == "previous-password-2"
    with credentials.get_client() as posthog:
        live = posthog.get_sharing("insight", 2)
    assert not live.password_required and live.share_passwords == []  # share not locked


def test_a_block_overwritten_during_the_run_is_not_reported_reset(credentials, emulator,
                                                                  protected) -> None:
    import threading

    # The old password's removal is applied, then its answer held for 8 s (this client
    # waits 20): the moment the emulator has applied it, someone else writes the block,
    # with time to spare on a loaded machine.
    patient = credentials.model_copy(update={"timeout_seconds": 20})
    emulator.set_faults(stall_seconds=8, schedule=[{"operation": "delete_sharing_password",
                                                    "fault": "stall"}])

    def other_writer() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not applied(emulator, "delete_sharing_password"):
            time.sleep(0.05)
        Secret(value="someone-elses-value").save("posthog-share-insight-1", overwrite=True)

    writer = threading.Thread(target=other_writer, daemon=True)
    writer.start()
    with pytest.raises(RuntimeError, match="1 target"):
        reset_sharing_passwords(patient, [SharingTarget(resource="insight", id="1")],
                                settle_seconds=0)
    writer.join()
    [outcome] = last_artifact_rows("posthog-password-reset")
    assert outcome["status"] == "failed" and "overwritten" in outcome["reason"]
    assert outcome["stored_secret"] == "the stored password is not the working one"


# -- never act on more than asked --------------------------------------------------------------

@pytest.fixture
def aged_keys(emulator):
    return emulator.seed({"project_secret_api_keys": [
        {"label": "flags-old", "created_days_ago": 10},
        {"label": "flags-new", "created_days_ago": 1},
        {"label": "backend", "created_days_ago": 40},
        {"label": "payments", "created_days_ago": 10},
        {"label": "flags-ancient", "created_days_ago": 45},
    ]})


def _shipped_schedules() -> list[tuple[str, dict]]:
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    out = []
    for deployment in spec["deployments"]:
        if not deployment["entrypoint"].endswith("rotate_project_secret_api_keys"):
            continue
        for schedule in deployment.get("schedules", []):
            out.append((schedule["slug"], {**deployment["parameters"],
                                           **schedule.get("parameters", {})}))
    return out


@pytest.mark.parametrize(("slug", "expected"), [
    ("monthly-all-old-keys", {"backend", "flags-ancient"}),
    ("weekly-flag-keys", {"flags-old", "flags-ancient"}),
])
def test_shipped_schedules_roll_only_what_they_name(credentials, emulator, aged_keys, slug,
                                                    expected) -> None:
    parameters = dict(_shipped_schedules())[slug]
    parameters.update(credentials=credentials, notification=None,
                      selector=KeySelector.model_validate(parameters["selector"]))
    report = rotate_project_secret_api_keys(**parameters)
    assert {o.label for o in report.outcomes} == expected
    rolled = {label for label, k in key_state(emulator).items() if k["last_rolled_at"]}
    assert rolled == expected


def test_selector_criteria_narrow_and_unknown_names_fail_first(credentials, emulator,
                                                               aged_keys) -> None:
    report = rotate_project_secret_api_keys(
        credentials, KeySelector(labels=["flags-old", "backend"], older_than_days=30),
        dry_run=True)
    assert [o.label for o in report.outcomes] == ["backend"]
    for selector, field in [(KeySelector(labels=["backend", "no-such"]), "selector.labels"),
                            (KeySelector(ids=["no-such-id"]), "selector.ids")]:
        with pytest.raises(InvalidInputError, match="no-such") as info:
            rotate_project_secret_api_keys(credentials, selector)
        assert info.value.field == field
    assert not any(k["last_rolled_at"] for k in key_state(emulator).values())
    with pytest.raises(ValueError, match="cannot be combined"):
        KeySelector(all_keys=True, label_pattern="x*")


def test_a_wrong_project_or_host_fails_every_job_before_any_write(credentials,
                                                                  emulator) -> None:
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": "acme"}],
                   "insights": [{"id": 1}]})
    not_posthog = credentials.model_copy(update={"host": PREFECT_API_URL.value().rsplit(
        "/api", 1)[0]})
    for creds in (credentials.model_copy(update={"project_id": 999}), not_posthog):
        jobs = [
            lambda c=creds: bulk_update_group_properties(c, updates=[GroupPropertyUpdate(
                group_type_index=0, group_key="acme", set={"plan": "pro"})]),
            lambda c=creds: rotate_project_secret_api_keys(c, KeySelector(all_keys=True)),
            lambda c=creds: reset_sharing_passwords(c, [SharingTarget(resource="insight",
                                                                      id="1")]),
        ]
        for job in jobs:
            with pytest.raises(InvalidInputError, match="was not found at") as info:
                job()
            assert info.value.field == "project_id"
    assert [r for r in emulator.read_requests() if r["method"] != "GET"] == []


def test_missing_insights_dashboards_fail_before_any_write(credentials, emulator) -> None:
    emulator.seed({"insights": [{"id": 1}]})
    with pytest.raises(InvalidInputError, match="insight 7, dashboard 3"):
        reset_sharing_passwords(credentials, [SharingTarget(resource="insight", id="1"),
                                              SharingTarget(resource="insight", id="7"),
                                              SharingTarget(resource="dashboard", id="3")])
    assert [r for r in emulator.read_requests() if r["method"] != "GET"] == []


# -- never leak a secret, whatever the server answers ------------------------------------------

def _fragments(secret: str, size: int = 12) -> set[str]:
    body = secret[4:] if secret[:4] in ("phx_", "phs_") else secret
    return {body[i:i + size] for i in range(0, max(1, len(body) - size + 1))}


def test_hostile_server_echoing_secrets_everywhere_leaks_nothing(credentials, emulator,
                                                                 tmp_path, caplog,
                                                                 capfd) -> None:
    emulator.seed({"insights": [{"id": 1}, {"id": 2}, {"id": 3}],
                   "sharing": [{"resource": "insight", "id": i, "enabled": True,
                                "password_required": True, "passwords": [f"pw-CANARY-old-{i}"]}
                               for i in (1, 2, 3)],
                   "project_secret_api_keys": [
                       {"label": "echo", "value": "phs_CANARY_echo_original_value_00"},
                       {"label": "cut", "value": "phs_CANARY_cut_original_value_000"},
                       {"label": "broken", "value": "phs_CANARY_broken_original_value_0"}]})
    for label in ("echo", "cut", "broken"):
        Secret(value=f"phs_CANARY_{label}_stored").save(f"posthog-psak-{label}", overwrite=True)
    proxy = HostileProxy(emulator.url)
    hostile = credentials.model_copy(update={"host": proxy.url, "max_attempts": 2})
    # Rotation: a malformed roll answer (the value with no id), read-backs and checks that
    # echo every secret seen so far into every error field, a text error cut mid-secret.
    proxy.add("drop_field", "/roll", field="id")
    proxy.add("echo_error", r"project_secret_api_keys/[^/?]+/($|\?)", method="GET", count=2)
    proxy.add("echo_ok", "flags/definitions", count=3)
    proxy.add("cut_text", "flags/definitions", count=50)
    # Reset: an echoed rejection of the create (with the password in it), then a malformed
    # create answer, then echoes on the final check.
    proxy.add("echo_error", "insights/1/sharing/passwords", method="POST")
    proxy.add("drop_field", "insights/2/sharing/passwords", method="POST", field="id")
    proxy.add("echo_error", "insights/3/sharing/passwords/", method="DELETE", count=5)
    storage = tmp_path / "storage"
    try:
        with temporary_settings({PREFECT_RESULTS_PERSIST_BY_DEFAULT: True,
                                 PREFECT_LOCAL_STORAGE_PATH: storage}):
            with pytest.raises(RuntimeError):
                rotate_project_secret_api_keys(hostile, KeySelector(all_keys=True),
                                               settle_seconds=0)
            with pytest.raises(RuntimeError):
                reset_sharing_passwords(hostile, [SharingTarget(resource="insight", id=str(i))
                                                  for i in (1, 2, 3)], settle_seconds=0)
    finally:
        proxy.close()
    assert len(proxy.applied) >= 6, proxy.applied  # the hostile answers were really given
    canaries = {ADMIN_KEY, *proxy.seen}
    canaries |= {Secret.load(f"posthog-psak-{x}").get() for x in ("echo", "cut", "broken")}
    canaries |= {Secret.load(f"posthog-share-insight-{i}").get() for i in (1, 2, 3)
                 if _exists(f"posthog-share-insight-{i}")}
    canaries = {c for c in canaries if c and len(c) >= 12}
    assert len(canaries) >= 6
    out, err = capfd.readouterr()
    haystacks = {
        "prefect api (parameters, states, logs, artifacts)": asyncio.run(prefect_records()),
        "persisted results and failures": storage_text(storage) if storage.exists() else "",
        "stdout/stderr": out + err,
        "log records": caplog.text,
    }
    assert haystacks["persisted results and failures"], "no failure was persisted"
    for where, text in haystacks.items():
        for canary in canaries:
            leaked = [f for f in _fragments(canary) if f in text]
            assert not leaked, f"a fragment of a secret leaked into {where}: {leaked[:1]}"


def _exists(name: str) -> bool:
    try:
        Secret.load(name)
        return True
    except ValueError:
        return False


def test_redactor_masks_whole_secrets_and_long_fragments_only() -> None:
    import logging

    from prefect_posthog.client import MASK, SECRETS, RedactingFilter, Redactor

    secret = "phs_9fK2mQ7xLp4RtZ8vN1cB6wYhJ3sD0gE5aU"
    redactor = Redactor([secret])
    assert redactor.redact(f"key={secret}!") == f"key={MASK}!"
    cut = f"upstream error: {secret[:20]}"  # a body the server cut mid-key
    assert secret[:20] not in redactor.redact(cut) and MASK in redactor.redact(cut)
    assert redactor.redact(f"tail {secret[-15:]}") == f"tail {MASK}"
    assert redactor.redact(f"only {secret[5:16]} here") == f"only {secret[5:16]} here"  # 11
    SECRETS.add(secret)
    record = logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1,
                               "failed with %s", (secret,), None)
    assert RedactingFilter().filter(record) and secret not in record.getMessage()
