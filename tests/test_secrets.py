"""Secret canaries: run every flow with recognisable secrets, then search everywhere Prefect
keeps things — parameters, state messages, logs, artifacts, persisted results — plus the
notification payloads, exception texts and captured output. Zero hits allowed."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from prefect.blocks.system import Secret
from prefect.settings import (
    PREFECT_LOCAL_STORAGE_PATH,
    PREFECT_RESULTS_PERSIST_BY_DEFAULT,
    temporary_settings,
)

from prefect_posthog.flows import (
    GroupPropertyUpdate,
    KeySelector,
    SharingTarget,
    bulk_update_group_properties,
    reset_sharing_passwords,
    rotate_project_secret_api_keys,
)
from tests.conftest import ADMIN_KEY
from tests.helpers import WebhookReceiver, posthog_events, prefect_records, storage_text

SHARE_PASSWORD = "pw-CANARY-share-9d2b"


def secret_tasks_in_a_user_flow(credentials) -> list[str]:
    """A user's own flow calling the secret-bearing tasks directly; returns their secrets."""
    from prefect import flow
    from pydantic import SecretStr

    from prefect_posthog import tasks as t

    values: list[str] = []

    @flow
    def users_flow() -> None:
        key = t.create_project_secret_api_key(credentials, "direct", ["feature_flag:read"])
        rolled = t.roll_project_secret_api_key(credentials, key.id)
        password = t.create_insight_sharing_password(
            credentials, 1, raw_password=SecretStr("pw-CANARY-direct-5566"), note="direct")
        generated = t.create_insight_sharing_password(credentials, 1, note="generated")
        # Out of band, as a pipeline would store them: a flow's own return value is
        # persisted like any result.
        values.extend(s.get_secret_value() for s in (key.value, rolled.value,
                                                     password.password, generated.password))

    users_flow()
    assert all(values)
    return values


def test_no_secret_reaches_any_channel(credentials, emulator, tmp_path, capfd,
                                       caplog) -> None:
    emulator.seed({
        "groups": [{"group_type_index": 0, "group_key": "acme"}],
        "insights": [{"id": 1}, {"id": 2}],
        "sharing": [{"resource": "insight", "id": 1, "enabled": True, "password_required": True,
                     "passwords": ["pw-CANARY-old-1234"]}]})
    seeded = emulator.seed({"project_secret_api_keys": [
        {"label": "canary", "value": "phs_CANARY_original_value_0001"}]})
    Secret(value="phs_CANARY_original_value_0001").save("posthog-psak-canary", overwrite=True)
    Secret(value=SHARE_PASSWORD).save("canary-share-password", overwrite=True)
    hook = WebhookReceiver()
    broken = WebhookReceiver(status=500)
    storage = tmp_path / "storage"
    try:
        with temporary_settings({PREFECT_RESULTS_PERSIST_BY_DEFAULT: True,
                                 PREFECT_LOCAL_STORAGE_PATH: storage}):
            bulk_update_group_properties(credentials, updates=[GroupPropertyUpdate(
                group_type_index=0, group_key="acme", set={"tier": "gold"})])
            rotate_project_secret_api_keys(credentials, KeySelector(labels=["canary"]),
                                           notification=hook.block())
            emulator.set_faults(schedule=[{"operation": "roll_project_secret_api_key",
                                           "fault": "lost_response"}])
            with pytest.raises(RuntimeError):  # a failing run persists its exception too
                rotate_project_secret_api_keys(credentials, KeySelector(labels=["canary"]),
                                               notification=broken.block(), settle_seconds=0.2)
            reset_sharing_passwords(
                credentials, [SharingTarget(resource="insight", id="1")],
                new_password=Secret.load("canary-share-password"), refresh_link=True,
                notification=hook.block())
            task_values = secret_tasks_in_a_user_flow(credentials)
            emulator.configure(advanced_permissions=False)
            with pytest.raises(RuntimeError):
                reset_sharing_passwords(
                    credentials, [SharingTarget(resource="insight", id="2")],
                    new_password=Secret.load("canary-share-password"))
    finally:
        hook.close()
        broken.close()
    rolled = Secret.load("posthog-psak-canary").get()
    assert rolled.startswith("phs_") and rolled != seeded["project_secret_api_keys"][0]["value"]
    canaries = [ADMIN_KEY, rolled, "phs_CANARY_original_value_0001", SHARE_PASSWORD,
                "pw-CANARY-old-1234", *task_values]

    out, err = capfd.readouterr()
    haystacks = {
        "prefect api (parameters, states, logs, artifacts)": asyncio.run(prefect_records()),
        "persisted results": storage_text(storage) if storage.exists() else "",
        "notifications": json.dumps(hook.received + broken.received),
        "stdout/stderr": out + err,
        "log records": caplog.text,
    }
    # every channel must hold something, or the search proves nothing
    # (stdout may be empty: pytest routes Prefect's console logs into the log records)
    empty = [k for k, v in haystacks.items() if not v and k != "stdout/stderr"]
    assert not empty, empty
    expected = {"posthog.secret-api-key.rotated", "posthog.sharing.password-reset",
                "posthog.groups.bulk-update.completed"}
    for _ in range(30):  # the server persists events shortly after they are sent
        emitted = {e["event"] for e in json.loads(asyncio.run(posthog_events()))}
        if expected <= emitted:
            break
        time.sleep(1)
    assert expected <= emitted, emitted
    haystacks["prefect api (parameters, states, logs, artifacts)"] = asyncio.run(
        prefect_records())
    assert haystacks["notifications"] and haystacks["prefect api (parameters, states, logs, "
                                                    "artifacts)"]
    for where, text in haystacks.items():
        for canary in canaries:
            assert canary not in text, f"a secret leaked into {where}"
