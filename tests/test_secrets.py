"""Secret canaries: run every flow with recognisable secrets, then search everywhere Prefect
keeps things — parameters, state messages, logs, artifacts, persisted results — plus the
notification payloads, exception texts and captured output. Zero hits allowed."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
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
    audit_project_secret_api_keys,
    bulk_update_group_properties,
    reset_sharing_passwords,
    rotate_project_secret_api_keys,
)
from tests.helpers import ADMIN_KEY, PROJECT_TOKEN, WebhookReceiver, leak_channels

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
    since = datetime.now(UTC).isoformat()
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
    channels = leak_channels(storage, hook.received + broken.received, out + err, caplog.text, {
        "posthog.secret-api-key.rotated", "posthog.sharing.password-reset",
        "posthog.groups.bulk-update.completed"}, since)
    for where, text in channels.items():
        for canary in canaries:
            assert canary not in text, f"a secret leaked into {where}"


def test_no_secret_of_the_overlap_and_audit_jobs_reaches_any_channel(
        credentials, emulator, tmp_path, capfd, caplog) -> None:
    since = datetime.now(UTC).isoformat()
    emulator.seed({"project_secret_api_keys": [
        {"label": "canary-swap", "value": "phs_CANARY_swap_original_0002",
         "created_days_ago": 40, "scopes": ["feature_flag:read"]},
        {"label": "canary-drift", "value": "phs_CANARY_drift_original_0003",
         "scopes": ["feature_flag:read"]}]})
    for label in ("swap", "drift"):
        Secret(value=f"phs_CANARY_{label}_original_000{2 if label == 'swap' else 3}").save(
            f"posthog-psak-canary-{label}", overwrite=True)
    hook = WebhookReceiver()
    storage = tmp_path / "storage"
    swap = KeySelector(labels=["canary-swap"])
    try:
        with temporary_settings({PREFECT_RESULTS_PERSIST_BY_DEFAULT: True,
                                 PREFECT_LOCAL_STORAGE_PATH: storage}):
            rotate_project_secret_api_keys(credentials, swap, strategy="overlap",
                                           notification=hook.block())
            successor = Secret.load("posthog-psak-canary-swap").get()
            with credentials.get_client() as posthog:  # rolled behind the jobs' backs
                key = next(k for k in posthog.iter_project_secret_api_keys()
                           if k.label == "canary-drift")
                posthog.roll_project_secret_api_key(key.id)
            with pytest.raises(RuntimeError):  # drift: the report-only audit fails
                audit_project_secret_api_keys(credentials, notification=hook.block())
            audit_project_secret_api_keys(credentials, repair=True, notification=hook.block())
            emulator.admin("POST", "clock", {"advance": 3 * 3600})
            httpx.get(f"{emulator.url}/flags/definitions", params={"token": PROJECT_TOKEN},
                      headers={"Authorization": f"Bearer {successor}"})  # a consumer's use
            rotate_project_secret_api_keys(credentials, swap, strategy="overlap",
                                           notification=hook.block())  # retires the old key
    finally:
        hook.close()
    repaired = Secret.load("posthog-psak-canary-drift").get()
    assert repaired.startswith("phs_") and successor.startswith("phs_")
    canaries = [ADMIN_KEY, successor, repaired, "phs_CANARY_swap_original_0002",
                "phs_CANARY_drift_original_0003"]
    out, err = capfd.readouterr()
    channels = leak_channels(storage, hook.received, out + err, caplog.text, {
        "posthog.secret-api-key.rotated", "posthog.secret-api-key.retired",
        "posthog.secret-api-key.audited", "posthog.secret-api-key.drift-detected"}, since)
    assert len(hook.received) >= 4  # the start, the drift, its repair, the retirement
    for where, text in channels.items():
        for canary in canaries:
            assert canary not in text, f"a secret leaked into {where}"
