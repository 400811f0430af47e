"""Drift: keys rolled behind the job's back (the management API, PostHog's public leaked-key
endpoint, a run killed between roll and store) found and repaired by the next rotation
whatever their age, and reported by the audit; 402 answers counted as authenticated."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest
from prefect.blocks.system import Secret

from prefect_posthog.flows import (
    JobFailedError,
    KeySelector,
    audit_project_secret_api_keys,
    rotate_project_secret_api_keys,
)
from tests.helpers import WebhookReceiver, authenticates, emitted

WEEKLY = KeySelector(label_pattern="flags-*", older_than_days=7)  # the shipped schedule


def keys(emulator) -> dict[str, dict]:
    return {k["label"]: k for k in emulator.read_state()["project_secret_api_keys"].values()}


def rolls(emulator) -> list[dict]:
    return [r for r in emulator.read_requests()
            if r["operation"] in ("roll_project_secret_api_key", "create_project_secret_api_key")]


def stored(label: str) -> str:
    return Secret.load(f"posthog-psak-{label}").get()


@pytest.fixture
def young(emulator) -> dict[str, str]:
    """Keys 2 days old, each value stored in its block (as a recent rotation left them)."""
    seeded = emulator.seed({"project_secret_api_keys": [
        {"label": label, "created_days_ago": 2}
        for label in ("flags-admin", "flags-leaked", "flags-fine", "backend")]})
    values = {k["label"]: k["value"] for k in seeded["project_secret_api_keys"]}
    for label, value in values.items():
        Secret(value=value).save(f"posthog-psak-{label}", overwrite=True)
    return values


def behind_the_jobs_back(emulator, credentials, young) -> None:
    with credentials.get_client() as posthog:  # an admin rolls one in PostHog's UI
        posthog.roll_project_secret_api_key(keys(emulator)["flags-admin"]["id"])
    leaked = httpx.post(f"{emulator.url}/api/revoke_leaked_key",
                        json={"token": young["flags-leaked"]}).json()
    assert leaked == {"found": True, "type": "project_secret_api_key"}


def test_keys_rolled_behind_the_jobs_back_are_repaired_by_the_weekly_run(credentials, emulator,
                                                                         young) -> None:
    since = datetime.now(UTC).isoformat()
    behind_the_jobs_back(emulator, credentials, young)
    assert not authenticates(emulator.url, stored("flags-admin"))  # consumers are cut off
    report = rotate_project_secret_api_keys(credentials, WEEKLY, settle_seconds=0)
    outcomes = {o.label: o for o in report.outcomes}
    assert set(outcomes) == {"flags-admin", "flags-leaked"}  # young, but their blocks are dead
    for label in ("flags-admin", "flags-leaked"):
        assert (outcomes[label].status, outcomes[label].action) == ("repaired", "repair")
        assert authenticates(emulator.url, stored(label))
        assert keys(emulator)[label]["mask_value"] == outcomes[label].mask_value
    assert "the block holds" in outcomes["flags-admin"].detail
    # In sync, young or out of the pattern: untouched and still working.
    assert stored("flags-fine") == young["flags-fine"] and stored("backend") == young["backend"]
    assert authenticates(emulator.url, young["flags-fine"])
    assert keys(emulator)["backend"]["last_used_at"] is None  # out of scope: not even checked

    def repaired(events: list[dict]) -> set[str]:
        return {e["resource"]["posthog.label"] for e in events
                if e["event"] == "posthog.secret-api-key.rotated"
                and e["resource"]["posthog.status"] == "repaired"}

    assert repaired(emitted(lambda e: len(repaired(e)) >= 2, since=since)) == {
        "flags-admin", "flags-leaked"}


def test_a_dead_value_with_the_live_mask_is_repaired(credentials, emulator) -> None:
    live = "phs_" + "A" * 40 + "tail"
    emulator.seed({"project_secret_api_keys": [{"label": "flags-x", "value": live,
                                                "created_days_ago": 2}]})
    Secret(value="phs_" + "B" * 40 + "tail").save("posthog-psak-flags-x")  # same mask, dead
    [outcome] = rotate_project_secret_api_keys(credentials, WEEKLY, settle_seconds=0).outcomes
    assert outcome.status == "repaired" and "refuses" in outcome.detail
    assert authenticates(emulator.url, stored("flags-x"))


def test_a_key_without_storage_yet_is_not_drift(credentials, emulator) -> None:
    emulator.seed({"project_secret_api_keys": [{"label": "flags-new", "created_days_ago": 2}]})
    report = rotate_project_secret_api_keys(credentials, WEEKLY, settle_seconds=0)
    assert report.outcomes == [] and rolls(emulator) == []


def test_the_audit_reports_each_state_then_repairs_on_request(credentials, emulator,
                                                               young) -> None:
    since = datetime.now(UTC).isoformat()
    seeded = emulator.seed({"project_secret_api_keys": [
        {"label": "no-block"}, {"label": "flags-swap", "created_days_ago": 40}]})
    Secret(value=seeded["project_secret_api_keys"][1]["value"]).save("posthog-psak-flags-swap")
    rotate_project_secret_api_keys(credentials, KeySelector(labels=["flags-swap"]),
                                   strategy="overlap", settle_seconds=0)
    behind_the_jobs_back(emulator, credentials, young)
    pair = {label: keys(emulator)[label]["last_used_at"]
            for label in ("flags-swap", "flags-swap~next")}
    before = len(rolls(emulator))
    receiver = WebhookReceiver()
    try:
        with pytest.raises(JobFailedError, match="not live"):
            audit_project_secret_api_keys(credentials, notification=receiver.block())
        report_only = len(rolls(emulator))
        assert report_only == before  # report-only: nothing written
        states = {row["label"]: row["state"] for row in latest_rows("posthog-key-audit")}
        assert states == {"flags-admin": "rolled_elsewhere", "flags-leaked": "rolled_elsewhere",
                          "flags-fine": "in_sync", "backend": "in_sync",
                          "no-block": "no_storage", "flags-swap": "in_overlap"}
        # An overlap's keys are never checked: a check would count as a use.
        assert {label: keys(emulator)[label]["last_used_at"] for label in pair} == pair
        [message] = receiver.received
        assert "flags-admin" in message["body"] and "not repaired" in message["body"]
        assert "flags-fine" not in message["body"]

        def drift(events: list[dict]) -> set[str]:
            return {e["resource"]["posthog.label"] for e in events
                    if e["event"] == "posthog.secret-api-key.drift-detected"}

        assert drift(emitted(lambda e: len(drift(e)) >= 2, since=since)) == {
            "flags-admin", "flags-leaked"}

        report = audit_project_secret_api_keys(credentials, repair=True, settle_seconds=0,
                                               notification=receiver.block())
    finally:
        receiver.close()
    assert {o.label: o.status for o in report.repaired} == {"flags-admin": "repaired",
                                                            "flags-leaked": "repaired"}
    assert authenticates(emulator.url, stored("flags-admin"))
    assert authenticates(emulator.url, stored("flags-leaked"))
    again = audit_project_secret_api_keys(credentials)
    assert {a.label: a.state for a in again.audits if a.label.startswith("flags-")} == {
        "flags-admin": "in_sync", "flags-leaked": "in_sync", "flags-fine": "in_sync",
        "flags-swap": "in_overlap"}
    assert "consumers use it" in next(a.detail for a in again.audits if a.label == "flags-swap")


def test_a_quota_limited_project_still_verifies(credentials, emulator, young) -> None:
    # PostHog answers 402 quota_limited only after the key authenticated.
    emulator.configure(quota_limited=True)
    [outcome] = rotate_project_secret_api_keys(credentials, KeySelector(labels=["backend"]),
                                               settle_seconds=0).outcomes
    assert outcome.status == "rotated" and outcome.new_value_works and outcome.old_value_revoked
    audit = audit_project_secret_api_keys(credentials)
    assert {a.state for a in audit.audits} == {"in_sync"}  # 402 is not a dead value


def latest_rows(key: str) -> list[dict]:
    from prefect.client.orchestration import get_client

    async def read() -> list[dict]:
        async with get_client() as client:
            found = [a for a in await client.read_latest_artifacts() if a.key == key]
        data = found[0].data
        return json.loads(data) if isinstance(data, str) else data

    return asyncio.run(read())
