"""Deployments on a real Prefect server and process worker, triggered as the UI does."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prefect import flow
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from prefect_posthog.deployments.local import LocalStack

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    local = LocalStack(tmp_path_factory.mktemp("prefect-home"), port=0, emulator_port=0)
    local.up()
    yield local
    started = list(local.processes)
    local.down()
    assert started and all(p.poll() is not None for p in started)


def api(stack: LocalStack, method: str, path: str, **kwargs) -> httpx.Response:
    """Call the Prefect API, repeating 5xx answers as Prefect's own client does.

    On two loaded cores its SQLite-backed server occasionally answers 5xx; only those are
    repeated, every other status is returned for the caller's assertion.
    """
    for _ in range(5):
        response = httpx.request(method, f"{stack.api_url}{path}", timeout=30, **kwargs)
        if response.status_code < 500:
            return response
        time.sleep(1)
    return response


def deployment(stack: LocalStack, flow_name: str) -> dict:
    found = api(stack, "POST", "/deployments/filter", json={
        "flows": {"name": {"any_": [flow_name]}}}).json()
    assert len(found) == 1, found
    return found[0]


def trigger(stack: LocalStack, flow_name: str, parameters: dict, timeout: float = 120) -> dict:
    """Create a flow run from the deployment with parameters, as the UI's Run form does."""
    dep = deployment(stack, flow_name)
    response = api(stack, "POST", f"/deployments/{dep['id']}/create_flow_run",
                   json={"parameters": parameters})
    assert response.status_code == 201, (response.status_code, response.text[:1000])
    run = response.json()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = api(stack, "GET", f"/flow_runs/{run['id']}").json()["state"]
        if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return state
        time.sleep(0.5)
    raise AssertionError(f"{flow_name} did not finish; worker log:\n"
                         + (stack.home / "worker.log").read_text()[-3000:])


def emulator(stack: LocalStack, action: str) -> object:
    return httpx.get(f"{stack.emulator_url}/_emulator/{action}").json()


def test_bulk_update_deployment(stack) -> None:
    state = trigger(stack, "posthog-bulk-update-group-properties", {
        "updates": [{"group_type_index": 0, "group_key": "company-00001",
                     "set": {"plan": "e2e-plan"}}], "dry_run": False})
    assert state["type"] == "COMPLETED", state
    groups = emulator(stack, "state")["groups"]
    assert groups['[1, 0, "company-00001"]']["group_properties"]["plan"] == "e2e-plan"


def test_rotation_deployment_with_its_default_parameters(stack) -> None:
    before = {k["label"]: k["secure_value"]
              for k in emulator(stack, "state")["project_secret_api_keys"].values()}
    state = trigger(stack, "posthog-rotate-project-secret-api-keys", {})
    assert state["type"] == "COMPLETED", state
    after = {k["label"]: k["secure_value"]
             for k in emulator(stack, "state")["project_secret_api_keys"].values()}
    assert after["flags-backend"] != before["flags-backend"]  # 120 days old: rolled
    assert after["flags-edge"] == before["flags-edge"]  # 10 days old: left alone
    messages = emulator(stack, "webhook")
    assert any("flags-backend" in m["body"] for m in messages)


def test_password_reset_deployment(stack) -> None:
    state = trigger(stack, "posthog-reset-sharing-passwords",
                    {"targets": [{"resource": "insight", "id": "1"}], "refresh_link": True})
    assert state["type"] == "COMPLETED", state
    data = emulator(stack, "state")
    active = [p for p in data["share_passwords"].values() if p["is_active"]
              and data["sharing"][str(p["config"])]["expires_at"] is None]
    assert len(active) == 1 and active[0]["note"].startswith("prefect-posthog run")


def test_bad_parameters_are_refused_before_running(stack) -> None:
    # The server checks parameters against the deployment's schema, as the UI form does.
    dep = deployment(stack, "posthog-bulk-update-group-properties")
    response = api(stack, "POST", f"/deployments/{dep['id']}/create_flow_run", json={
        "parameters": {"updates": [{"group_key": "no-type"}], "dry_run": False}})
    assert response.status_code == 409, response.text
    assert "group_type_index" in response.text


def test_parameter_schemas_render_as_forms(stack) -> None:
    bulk = deployment(stack, "posthog-bulk-update-group-properties")
    schema = bulk["parameter_openapi_schema"]
    creds = schema["properties"]["credentials"]
    assert {"$ref": "#/definitions/PostHogCredentials"} in creds["anyOf"]
    block = schema["definitions"]["PostHogCredentials"]
    assert block["block_type_slug"] == "posthog-credentials"
    assert block["secret_fields"] == ["personal_api_key"]
    assert block["properties"]["personal_api_key"]["format"] == "password"
    update = schema["definitions"]["GroupPropertyUpdate"]
    assert update["properties"]["group_type_index"]["maximum"] == 4
    assert update["properties"]["group_key"]["description"]
    assert schema["properties"]["dry_run"]["type"] == "boolean"
    assert schema["properties"]["source_path"]["description"]
    rotation = deployment(stack, "posthog-rotate-project-secret-api-keys")
    schedules = {s["schedule"]["cron"]: s for s in rotation["schedules"]}
    assert set(schedules) == {"0 6 1 * *", "0 6 * * 1"}
    assert schedules["0 6 1 * *"]["active"] and not schedules["0 6 * * 1"]["active"]
    assert schedules["0 6 * * 1"]["parameters"]["selector"]["label_pattern"] == "flags-*"
    assert "KeySelector" in rotation["parameter_openapi_schema"]["definitions"]
    assert bulk["parameters"]["credentials"] == "posthog"  # a name, never block data


def test_run_deployment_from_another_flow(stack) -> None:
    @flow
    def pipeline() -> str:
        run = run_deployment("posthog-bulk-update-group-properties/on-demand", parameters={
            "updates": [{"group_type_index": 0, "group_key": "company-00002",
                         "set": {"from_pipeline": True}}], "dry_run": False}, timeout=120)
        return run.state.type.value

    with temporary_settings({PREFECT_API_URL: stack.api_url}):
        assert pipeline() == "COMPLETED"
    groups = emulator(stack, "state")["groups"]
    assert groups['[1, 0, "company-00002"]']["group_properties"]["from_pipeline"] is True


def test_every_process_is_stopped(tmp_path: Path) -> None:
    local = LocalStack(tmp_path, port=0, emulator_port=0)
    local.up()
    pids = [p.pid for p in local.processes]
    local.down()
    import os
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
