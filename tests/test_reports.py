"""The three reports as people read them on the Artifacts page: columns, values, summaries."""

from __future__ import annotations

import asyncio
import json

import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client

from prefect_posthog.flows import (
    JobFailedError,
    bulk_update_group_properties,
    reset_sharing_passwords,
    rotate_project_secret_api_keys,
)
from prefect_posthog.flows.models import KeySelector, SharingTarget


def latest(key: str) -> object:
    async def read() -> object:
        async with get_client() as client:
            found = [a for a in await client.read_latest_artifacts() if a.key == key]
        assert found, f"no artifact {key}"
        data = found[0].data
        return json.loads(data) if isinstance(data, str) and data.startswith("[") else data

    return asyncio.run(read())


def assert_readable_summary(text: str) -> None:
    assert "| | |" not in text and "True" not in text and "False" not in text
    assert "None" not in text


def test_bulk_dry_run_shows_old_to_new_under_its_own_key(credentials, emulator) -> None:
    emulator.seed({"groups": [
        {"group_type_index": 0, "group_key": "acme",
         "group_properties": {"plan": "free", "bio": "x" * 80, "legacy": 1}}]})
    bulk_update_group_properties(credentials, updates=[
        {"group_type_index": 0, "group_key": "acme",
         "set": {"plan": "growth", "bio": "y" * 80, "seats": 5}, "unset": ["legacy"]},
        {"group_type_index": 0, "group_key": "newco", "set": {"plan": "free"}}],
        dry_run=True, create_missing=True)
    rows = latest("posthog-bulk-update-dry-run")
    assert list(rows[0])[:5] == ["row", "group_key", "status", "changes", "reason"]
    acme, newco = rows
    assert acme["status"] == "planned"
    changes = acme["changes"].split("; ")
    assert 'plan: "free" → "growth"' in changes
    assert "seats: (none) → 5" in changes and "legacy: 1 → (removed)" in changes
    bio = next(c for c in changes if c.startswith("bio:"))
    assert bio.count("…") == 2 and len(bio) < 100  # long values cut, visibly
    assert newco["changes"] == '(new group); plan: (none) → "free"'
    summary = latest("posthog-bulk-update-dry-run-summary")
    assert "**dry run:** yes" in summary and "nothing was written" in summary
    assert_readable_summary(summary.replace("Dry run", ""))
    assert emulator.read_state()["groups"]['[1, 0, "acme"]']["group_properties"]["plan"] == "free"


def test_bulk_failure_reason_is_not_cut(credentials, emulator) -> None:
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": "acme",
                               "group_properties": {"plan": "free"}}]})
    emulator.set_faults(schedule=[{"operation": "update_group_property", "fault": "500",
                                   "count": 50}])
    once = credentials.model_copy(update={"max_attempts": 1})
    with pytest.raises(JobFailedError, match="posthog-bulk-update artifact") as failure:
        bulk_update_group_properties(once, updates=[
            {"group_type_index": 0, "group_key": "acme", "set": {"plan": "x" * 600}}])
    # A pipeline catching the failure learns where the report is and how much failed.
    assert (failure.value.artifact_key, failure.value.failed) == ("posthog-bulk-update", 1)
    [row] = latest("posthog-bulk-update")
    assert row["status"] == "failed" and row["changes"] == "-"
    assert "500" in row["reason"] and len(row["reason"]) > 40


def test_rotation_table_leads_with_label_status_storage_verification(credentials,
                                                                   emulator) -> None:
    emulator.seed({"project_secret_api_keys": [{"label": "flags-old", "created_days_ago": 90}]})
    rotate_project_secret_api_keys(credentials, KeySelector(labels=["flags-old"]),
                                   verify=False, settle_seconds=0)
    [row] = latest("posthog-key-rotation")
    assert list(row)[:4] == ["label", "status", "stored_in", "verification"]
    assert list(row)[-1] == "id" and len(row["id"]) <= 8
    assert row["stored_in"] == "Secret block 'posthog-psak-flags-old'"
    assert row["new_value_works"] == "not checked: verify is off"
    summary = latest("posthog-key-rotation-summary")
    assert "**verified:**" in summary and "(verify is off)" in summary
    assert "**new values stored in:** Secret block 'posthog-psak-flags-old'" in summary
    assert "**notified:** no" in summary
    assert_readable_summary(summary)
    stored = Secret.load("posthog-psak-flags-old").get()
    assert stored[4:16] not in json.dumps(row) + summary

    rotate_project_secret_api_keys(credentials, KeySelector(labels=["flags-old"]),
                                   dry_run=True)
    [planned] = latest("posthog-key-rotation-dry-run")
    assert planned["status"] == "planned"
    assert planned["verification"] == "not checked: dry run"
    assert planned["stored_in"] == "Secret block 'posthog-psak-flags-old'"
    assert latest("posthog-key-rotation")[0]["status"] == "rotated"  # real report kept


def test_reset_report_says_what_was_verified_and_where_passwords_went(credentials,
                                                                     emulator) -> None:
    emulator.seed({"insights": [{"id": 1}], "sharing": [
        {"resource": "insight", "id": 1, "enabled": True, "password_required": True,
         "passwords": ["old-password"]}]})
    reset_sharing_passwords(credentials, [SharingTarget(resource="insight", id="1")],
                            settle_seconds=0)
    [row] = latest("posthog-password-reset")
    assert list(row)[:4] == ["share", "status", "stored_in", "share_url"]
    assert row["share"] == "insight 1" and row["status"] == "reset"
    assert row["link_refreshed"] == "no"
    summary = latest("posthog-password-reset-summary")
    assert "only active password is the stored one" in summary
    assert "**passwords stored in:** Secret block 'posthog-share-insight-1'" in summary
    assert_readable_summary(summary)
    password = Secret.load("posthog-share-insight-1").get()
    assert password not in json.dumps(row) + summary
