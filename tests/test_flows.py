"""The three flows against the emulator: happy path, dry run, partial failure, re-run, lost
responses, notifications received by a real local HTTP receiver."""

from __future__ import annotations

import json

import pytest
from prefect import flow
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.exceptions import ParameterTypeError

from prefect_posthog.client import InvalidInputError
from prefect_posthog.flows import (
    GroupPropertyUpdate,
    KeySelector,
    SharingTarget,
    bulk_update_group_properties,
    reset_sharing_passwords,
    rotate_project_secret_api_keys,
)
from tests.helpers import WebhookReceiver, authenticates


@pytest.fixture
def receiver():
    hook = WebhookReceiver()
    yield hook
    hook.close()


def groups_state(emulator) -> dict[str, dict]:
    return {json.loads(k)[2]: g["group_properties"]
            for k, g in emulator.read_state()["groups"].items()}


def writes(emulator, since: int = 0) -> list[dict]:
    return [r for r in emulator.read_requests(since)
            if r["operation"] in ("update_group_property", "delete_group_property",
                                  "create_group")]


# -- bulk update ------------------------------------------------------------------------------

@pytest.fixture
def companies(emulator):
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": f"c{i:03d}",
                               "group_properties": {"plan": "free", "seats": i}}
                              for i in range(250)]})


def desired(n_changed: int) -> list[dict]:
    rows = []
    for i in range(250):
        rows.append({"group_type_index": 0, "group_key": f"c{i:03d}",
                     "set": {"plan": "pro" if i < n_changed else "free", "seats": i}})
    return rows


def test_bulk_writes_only_differences_with_minimal_calls(credentials, emulator,
                                                         companies) -> None:
    report = bulk_update_group_properties(credentials, updates=desired(40), batch_size=1000)
    assert (report.applied, report.unchanged, report.failed) == (40, 210, 0)
    assert report.writes == 40 and len(writes(emulator)) == 40
    assert report.reads == 4  # 1 project check + 3 list pages for 250 groups, not 250 finds
    state = groups_state(emulator)
    assert state["c000"]["plan"] == "pro" and state["c100"]["plan"] == "free"
    # re-running the same input writes nothing
    since = emulator.read_requests()[-1]["seq"]
    again = bulk_update_group_properties(credentials, updates=desired(40))
    assert again.applied == 0 and again.unchanged == 250 and writes(emulator, since) == []


def test_bulk_dry_run_writes_nothing(credentials, emulator, companies) -> None:
    report = bulk_update_group_properties(credentials, updates=desired(5), dry_run=True)
    assert report.planned == 5 and report.writes == 0 and writes(emulator) == []
    planned = {i.group_key for i in report.items if i.status == "planned"}
    assert planned == {f"c{i:03d}" for i in range(5)}
    assert len(report.items) == 250 and not report.items_truncated  # every item listed


def test_bulk_report_keeps_failures_and_skips_when_truncated(credentials, emulator,
                                                             companies) -> None:
    rows = [*desired(0), {"group_type_index": 0, "group_key": "ghost", "set": {"a": 1}}]
    report = bulk_update_group_properties(credentials, updates=rows, max_report_items=3)
    assert report.total == 251 and report.items_truncated and len(report.items) == 3
    assert "ghost" in {i.group_key for i in report.items}


def test_bulk_partial_failure_reports_every_item(credentials, emulator, companies,
                                                 tmp_path) -> None:
    rows = [
        {"group_type_index": 0, "group_key": "c001", "set": {"plan": "pro"}, "unset": ["seats"]},
        {"group_type_index": 0, "group_key": "ghost", "set": {"plan": "pro"}},
        {"group_type_index": 0, "group_key": "c002", "set": {"plan": "pro"}},
        {"group_type_index": 0, "group_key": "c003", "set": {"plan": "free", "seats": 3}},
    ]
    emulator.set_faults(schedule=[{"operation": "update_group_property", "fault": "503",
                                   "count": 5}])
    path = tmp_path / "outcomes.jsonl"
    with pytest.raises(RuntimeError, match="1 of 4 items failed"):
        bulk_update_group_properties(credentials, updates=rows, batch_size=2,
                                     report_path=str(path), max_concurrency=1)
    outcomes = {o["group_key"]: o for o in map(json.loads, path.read_text().splitlines())}
    assert outcomes["ghost"]["status"] == "skipped"
    assert outcomes["c003"]["status"] == "unchanged"
    # the first write (c001's plan) outlives the client's 5 attempts; the rest goes on
    assert outcomes["c001"]["status"] == "failed" and "503" in outcomes["c001"]["reason"]
    assert outcomes["c002"]["status"] == "applied"
    # fix the outage and run again: only the failed item is written
    since = emulator.read_requests()[-1]["seq"]
    report = bulk_update_group_properties(credentials, updates=rows, batch_size=2)
    assert report.failed == 0 and report.applied == 1 and report.skipped == 1
    state = groups_state(emulator)
    assert state["c001"] == {"plan": "pro"} and state["c002"]["plan"] == "pro"
    assert len(writes(emulator, since)) == 2  # c001: +plan and -seats, nothing else


def test_bulk_invalid_input_applies_nothing(credentials, emulator, companies) -> None:
    rows = desired(3)
    rows[2] = {"group_key": "c002", "set": {"plan": "pro"}}
    # Prefect validates the typed parameter before the run starts and names the field.
    with pytest.raises(ParameterTypeError, match=r"updates\.2\.group_type_index"):
        bulk_update_group_properties(credentials, updates=rows)
    assert writes(emulator) == []


def test_bulk_streams_csv_and_jsonl_files(credentials, emulator, companies, tmp_path) -> None:
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("group_type_index,group_key,plan,$unset\n0,c010,enterprise,seats\n"
                        "0,c011,,\n")
    report = bulk_update_group_properties(credentials, source_path=str(csv_path))
    assert (report.applied, report.unchanged) == (1, 1)
    assert groups_state(emulator)["c010"] == {"plan": "enterprise"}
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"group_type_index": 0, "group_key": "c012", "set": {"seats": 1}}\n'
                     '{"group_type_index": 0, "group_key": "c013", "set": {"plan": null}}\n')
    with pytest.raises(InvalidInputError, match="row 2"):
        bulk_update_group_properties(credentials, source_path=str(jsonl))
    assert groups_state(emulator)["c012"]["seats"] == 12  # nothing half-done


def test_bulk_creates_missing_groups_when_asked(credentials, emulator) -> None:
    report = bulk_update_group_properties(credentials, create_missing=True, updates=[
        GroupPropertyUpdate(group_type_index=0, group_key="brand-new", set={"plan": "pro"})])
    assert report.applied == 1 and groups_state(emulator)["brand-new"] == {"plan": "pro"}


def test_bulk_as_subflow_of_a_pipeline(credentials, emulator, companies) -> None:
    @flow
    def pipeline() -> int:
        return bulk_update_group_properties(credentials, updates=desired(2)).applied

    assert pipeline() == 2


def test_bulk_report_artifact(credentials, emulator, companies) -> None:
    bulk_update_group_properties(credentials, updates=desired(1))

    async def artifacts():
        async with get_client() as client:
            return await client.read_latest_artifacts()
    import asyncio
    keys = {a.key: a for a in asyncio.run(artifacts())}
    assert "posthog-bulk-update" in keys and "posthog-bulk-update-summary" in keys
    assert "c000" in str(keys["posthog-bulk-update"].data)


# -- key rotation -----------------------------------------------------------------------------

@pytest.fixture
def keys(emulator):
    return {k["label"]: k for k in emulator.seed({"project_secret_api_keys": [
        {"label": "flags-old", "created_days_ago": 90},
        {"label": "flags-new", "created_days_ago": 2},
        {"label": "other"}]})["project_secret_api_keys"]}


def check(emulator, value: str) -> bool:
    return authenticates(emulator.url, value)


def test_rotation_rolls_stores_verifies_and_notifies(credentials, emulator, keys,
                                                     receiver) -> None:
    Secret(value=keys["flags-old"]["value"]).save("posthog-psak-flags-old", overwrite=True)
    report = rotate_project_secret_api_keys(
        credentials, KeySelector(older_than_days=30), notification=receiver.block())
    [outcome] = report.outcomes
    assert outcome.label == "flags-old" and outcome.status == "rotated"
    assert outcome.new_value_works and outcome.old_value_revoked
    stored = Secret.load("posthog-psak-flags-old").get()
    assert stored != keys["flags-old"]["value"] and check(emulator, stored)
    assert not check(emulator, keys["flags-old"]["value"])
    assert check(emulator, keys["flags-new"]["value"])  # not selected, untouched
    [message] = receiver.received
    assert "flags-old" in message["body"] and outcome.mask_value in message["body"]
    assert stored not in json.dumps(message)


def test_rotation_dry_run(credentials, emulator, keys) -> None:
    report = rotate_project_secret_api_keys(credentials, KeySelector(label_pattern="flags-*"),
                                            dry_run=True)
    assert {k.label for k in report.outcomes} == {"flags-old", "flags-new"}
    assert all(k.status == "planned" for k in report.outcomes)
    assert check(emulator, keys["flags-old"]["value"])


def test_rotation_lost_roll_response_is_reconciled(credentials, emulator, keys) -> None:
    emulator.set_faults(schedule=[{"operation": "roll_project_secret_api_key",
                                   "fault": "lost_response"}])
    report = rotate_project_secret_api_keys(credentials, KeySelector(labels=["other"]),
                                            settle_seconds=0.2)
    [outcome] = report.outcomes
    assert outcome.status == "rotated" and outcome.reconciled and outcome.new_value_works
    stored = Secret.load("posthog-psak-other").get()
    assert check(emulator, stored)
    rolls = [r for r in emulator.read_requests() if r["operation"] ==
             "roll_project_secret_api_key"]
    assert len(rolls) == 2  # the lost one and one deliberate roll — never more


def test_rotation_notification_failure_is_surfaced(credentials, emulator, keys) -> None:
    broken = WebhookReceiver(status=500)
    try:
        with pytest.raises(RuntimeError, match="notification failed"):
            rotate_project_secret_api_keys(credentials, KeySelector(labels=["other"]),
                                           notification=broken.block())
        assert broken.received  # it was tried
    finally:
        broken.close()
    assert check(emulator, Secret.load("posthog-psak-other").get())  # rotation itself done


def test_rotation_with_pipeline_callback(credentials, emulator, keys) -> None:
    vault: dict[str, str] = {}

    def store(key, value) -> str:
        vault[key.label] = value.get_secret_value()
        return "test vault"

    @flow
    def pipeline():
        return rotate_project_secret_api_keys(credentials, KeySelector(labels=["other"]),
                                              store=store)

    report = pipeline()
    assert report.outcomes[0].stored_in == "test vault" and check(emulator, vault["other"])


def test_empty_selector_is_rejected() -> None:
    with pytest.raises(ValueError, match="selector is empty"):
        KeySelector()


# -- sharing password reset ---------------------------------------------------------------------

@pytest.fixture
def shared(emulator):
    emulator.seed({"insights": [{"id": 1}, {"id": 2}], "dashboards": [{"id": 3}],
                   "sharing": [{"resource": "insight", "id": 1, "enabled": True,
                                "password_required": True, "passwords": ["old-password-1"]}]})


def viewer(emulator, url: str, password: str) -> int:
    import httpx
    token = url.rsplit("/", 1)[1]
    return httpx.post(f"{emulator.url}/shared/{token}", json={"password": password}).status_code


def test_password_reset_happy_path(credentials, emulator, shared, receiver) -> None:
    report = reset_sharing_passwords(
        credentials, [SharingTarget(resource="insight", id="1"),
                      SharingTarget(resource="dashboard", id=3)],
        refresh_link=True, notification=receiver.block())
    assert [t.status for t in report.targets] == ["reset", "reset"]
    first = report.targets[0]
    assert first.removed_passwords == 1 and first.link_refreshed
    new_password = Secret.load("posthog-share-insight-1").get()
    assert viewer(emulator, first.share_url, new_password) == 200
    assert viewer(emulator, first.share_url, "old-password-1") == 401
    with credentials.get_client() as posthog:
        config = posthog.get_sharing("insight", 1)
        assert [p.id for p in config.share_passwords] == [first.password_id]
    [message] = receiver.received
    assert first.share_url in message["body"] and new_password not in json.dumps(message)


def test_password_reset_lost_create_is_reconciled(credentials, emulator, shared) -> None:
    emulator.set_faults(schedule=[{"operation": "create_sharing_password",
                                   "fault": "lost_response"}])
    report = reset_sharing_passwords(credentials, [SharingTarget(resource="insight", id="1")],
                                     settle_seconds=0.2)
    assert report.targets[0].status == "reset" and report.targets[0].reconciled
    with credentials.get_client() as posthog:
        assert len(posthog.get_sharing("insight", 1).share_passwords) == 1  # no strays
    creates = [r for r in emulator.read_requests()
               if r["operation"] == "create_sharing_password"]
    assert len(creates) == 1  # adopted by note, not created twice
    url = report.targets[0].share_url
    assert viewer(emulator, url, Secret.load("posthog-share-insight-1").get()) == 200


def test_password_reset_dry_run_and_feature_gate(credentials, emulator, shared) -> None:
    report = reset_sharing_passwords(credentials, [SharingTarget(resource="insight", id="1")],
                                     dry_run=True)
    assert report.targets[0].status == "planned" and report.targets[0].removed_passwords == 1
    assert viewer(emulator, "x/" + emulator.read_state()["sharing"]["1"]["access_token"],
                  "old-password-1") == 200
    emulator.configure(advanced_permissions=False)
    with pytest.raises(RuntimeError, match="1 target"):
        reset_sharing_passwords(credentials, [SharingTarget(resource="insight", id="2")])


def test_bad_sharing_target_is_rejected() -> None:
    with pytest.raises(ValueError, match="must be an integer"):
        SharingTarget(resource="insight", id="abc")


def test_rotation_partial_failure_then_rerun(credentials, emulator, keys) -> None:
    # A 500 on a roll leaves its outcome unknown, so the job rolls again knowingly; four in a
    # row and that key fails (here never rolled), the next one rotates.
    emulator.set_faults(schedule=[{"operation": "roll_project_secret_api_key", "fault": "500",
                                   "count": 4}])
    with pytest.raises(RuntimeError, match="1 key"):
        rotate_project_secret_api_keys(credentials, KeySelector(labels=["flags-new", "other"]),
                                       settle_seconds=0)
    state = {k["label"]: k for k in emulator.read_state()["project_secret_api_keys"].values()}
    rolled = {label for label, k in state.items() if k["last_rolled_at"]}
    assert len(rolled) == 1  # one rotated, the other untouched and still working
    untouched = ({"flags-new", "other"} - rolled).pop()
    assert check(emulator, keys[untouched]["value"])
    # Re-run after the outage: the failed key rotates, the done one rotates again safely.
    report = rotate_project_secret_api_keys(credentials, KeySelector(labels=[untouched]))
    assert report.outcomes[0].status == "rotated"
    assert check(emulator, Secret.load(f"posthog-psak-{untouched}").get())


def test_password_reset_missing_target_changes_nothing_then_strays_go(credentials, emulator,
                                                                      shared) -> None:
    # A crashed earlier run left a password nobody stored.
    with credentials.get_client() as posthog:
        posthog.create_sharing_password("insight", 1, raw_password="stray-password-1",
                                        note="prefect-posthog run deadbeef #0 0000")
        before = posthog.get_sharing("insight", 1).share_passwords
    with pytest.raises(InvalidInputError, match="insight 99"):
        reset_sharing_passwords(credentials, [SharingTarget(resource="insight", id="1"),
                                              SharingTarget(resource="insight", id="99")])
    with credentials.get_client() as posthog:
        assert posthog.get_sharing("insight", 1).share_passwords == before  # nothing written
    report = reset_sharing_passwords(credentials, [SharingTarget(resource="insight", id="1")])
    assert report.targets[0].status == "reset" and report.targets[0].removed_passwords == 2
    with credentials.get_client() as posthog:
        notes = [p.note for p in posthog.get_sharing("insight", 1).share_passwords]
    assert len(notes) == 1 and "deadbeef" not in notes[0]  # old and stray both gone


def test_rotation_of_a_key_that_cannot_be_checked(credentials, emulator) -> None:
    emulator.seed({"project_secret_api_keys": [{"label": "endpoints",
                                                "scopes": ["endpoint:read"]}]})
    report = rotate_project_secret_api_keys(credentials, KeySelector(labels=["endpoints"]))
    [outcome] = report.outcomes
    assert outcome.status == "rotated" and outcome.new_value_works is None
    assert "authentication not checked" in outcome.verification and outcome.stored_in
    assert "Secret block holds it" in outcome.verification
    state = next(iter(emulator.read_state()["project_secret_api_keys"].values()))
    assert state["last_rolled_at"] is not None
