"""The command lines and entry points users run: emulator CLI, serve, the demo."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from prefect_posthog.deployments import demo, serve


def start_cli(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "prefect_posthog.emulator", "--port", "0",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "listening on" in line:
            return proc, line.split("listening on ")[1].split()[0]
    proc.kill()
    raise AssertionError("the emulator CLI did not print its URL")


def test_emulator_cli_keys_scopes_and_seed(tmp_path) -> None:
    state = tmp_path / "state.json"
    proc, url = start_cli("--personal-api-key", "phx_ro:group:read", "--seed-demo",
                          "--no-advanced-permissions", "--state", str(state))
    try:
        headers = {"Authorization": "Bearer phx_ro"}
        # The URL is printed only once the server answers.
        listed = httpx.get(f"{url}/api/projects/1/groups/", params={"group_type_index": 0},
                           headers=headers)
        assert listed.status_code == 200 and len(listed.json()["results"]) == 100
        denied = httpx.get(f"{url}/api/projects/1/project_secret_api_keys/", headers=headers)
        assert denied.json()["detail"] == "API key missing required scope 'project:read'"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    saved = json.loads(state.read_text())["data"]
    assert len(saved["groups"]) == 3000  # state kept for the next start


def test_emulator_cli_generates_a_key_and_rejects_bad_options() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "prefect_posthog.emulator", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("personal API key (all scopes): phx_")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    bad = subprocess.run([sys.executable, "-m", "prefect_posthog.emulator", "--faults", "boom"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown fault kind" in bad.stderr


def test_serve_builds_the_deployments_with_block_references(credentials, emulator) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from prefect_posthog.client import InvalidInputError

    credentials.save("posthog", overwrite=True)
    CustomWebhookNotificationBlock(name="n", url=f"{emulator.url}/_emulator/webhook",
                                   allow_private_urls=True).save("posthog-notify",
                                                                 overwrite=True)
    deployments = {(d.flow_name, d.name): d for d in serve.build()}
    assert set(deployments) == {
        ("posthog-rotate-project-secret-api-keys", "monthly"),
        ("posthog-rotate-project-secret-api-keys", "overlap"),
        ("posthog-audit-project-secret-api-keys", "hourly-audit"),
        ("posthog-bulk-update-group-properties", "update-group-properties"),
        ("posthog-reset-sharing-passwords", "reset-share-passwords")}
    monthly = deployments[("posthog-rotate-project-secret-api-keys", "monthly")]
    assert monthly.schedules and "06:00 UTC" in monthly.description
    overlap = deployments[("posthog-rotate-project-secret-api-keys", "overlap")]
    assert overlap.parameters["strategy"] == "overlap"
    assert [s.active for s in overlap.schedules] == [False]  # paused: it replaces the roll
    audit = deployments[("posthog-audit-project-secret-api-keys", "hourly-audit")]
    assert [s.active for s in audit.schedules] == [True]  # report-only: on
    # Stored as references to the saved documents, never as the blocks' data.
    as_stored = {name: block.model_dump(context={"serialize_blocks_as_references": True})
                 for name, block in monthly.parameters.items()
                 if name in ("credentials", "notification")}
    assert all(set(ref["$ref"]) == {"block_document_id"} for ref in as_stored.values())
    with pytest.raises(InvalidInputError) as info:
        serve.build(credentials="posthg")
    assert "'posthg'" in str(info.value) and "posthog" in str(info.value).split("saved")[1]


def test_demo_main_job_succeeds(capsys) -> None:
    assert demo.main() == 0
    out = capsys.readouterr().out
    assert "3000 rows: 3000 applied" in out and "old value revoked: True" in out
    assert "insight 1: reset" in out


def test_pin_blocks_turns_slug_references_into_ids_or_names_the_missing(credentials) -> None:
    from prefect.client.orchestration import get_client

    from prefect_posthog.deployments.pin_blocks import pin_block_references
    from prefect_posthog.flows import bulk_update_group_properties

    slug = {"$ref": {"block_document_slug": "posthog-credentials/pin-test"}}
    deployment_id = bulk_update_group_properties.to_deployment(
        "pin-test", parameters={"credentials": slug, "dry_run": True}).apply()
    with pytest.raises(LookupError, match="posthog-credentials/pin-test"):
        pin_block_references()
    block_id = credentials.save("pin-test", overwrite=True)
    changed = pin_block_references()
    assert changed["posthog-bulk-update-group-properties/pin-test"]["credentials"] == {
        "$ref": {"block_document_id": str(block_id)}}
    with get_client(sync_client=True) as client:
        stored = client.read_deployment(deployment_id).parameters
    assert stored == {"credentials": {"$ref": {"block_document_id": str(block_id)}},
                      "dry_run": True}
    assert pin_block_references() == {}  # nothing left to pin
