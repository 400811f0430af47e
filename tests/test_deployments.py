"""Deployments on a real Prefect server and process worker, triggered as the UI does."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from prefect import flow
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL, temporary_settings

from prefect_posthog.deployments.local import LocalStack

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def stack(tmp_path_factory, s3_server):
    local = LocalStack(tmp_path_factory.mktemp("prefect-home"), port=0, emulator_port=0)
    local.env.update(s3_server.env)  # the worker's runs find the loopback S3 as AWS's own
    local.up()
    yield local
    started = list(local.processes)
    local.down()
    # Every process the stack started is gone once it is down (server, emulator, worker).
    assert started and all(p.poll() is not None for p in started)
    for process in started:
        with pytest.raises(ProcessLookupError):
            os.kill(process.pid, 0)


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


# The rotation flow has two deployments (roll and overlap); the tests run the roll one.
MAIN_DEPLOYMENT = {"posthog-rotate-project-secret-api-keys": "monthly"}


def deployment(stack: LocalStack, flow_name: str, name: str | None = None) -> dict:
    found = api(stack, "POST", "/deployments/filter", json={
        "flows": {"name": {"any_": [flow_name]}}}).json()
    name = name or MAIN_DEPLOYMENT.get(flow_name)
    found = [d for d in found if name is None or d["name"] == name]
    assert len(found) == 1, found
    return found[0]


def trigger(stack: LocalStack, flow_name: str, parameters: dict, timeout: float = 120) -> dict:
    """Create a flow run from the deployment with parameters, as the UI's Run form does;
    return its final state."""
    return run_to_end(stack, flow_name, parameters, timeout)["state"]


def run_to_end(stack: LocalStack, flow_name: str, parameters: dict,
               timeout: float = 120) -> dict:
    """Like `trigger`, returning the whole finished flow run."""
    dep = deployment(stack, flow_name)
    response = api(stack, "POST", f"/deployments/{dep['id']}/create_flow_run",
                   json={"parameters": parameters})
    assert response.status_code == 201, (response.status_code, response.text[:1000])
    return wait_for_run(stack, response.json()["id"], flow_name, timeout)


def wait_for_run(stack: LocalStack, run_id: str, what: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api(stack, "GET", f"/flow_runs/{run_id}").json()
        if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"{what} did not finish; worker log:\n"
                         + (stack.home / "worker.log").read_text()[-3000:])


def events(stack: LocalStack, name: str, since: str, timeout: float = 60,
           where: Callable[[dict], bool] = lambda e: True) -> list[dict]:
    """The events called ``name`` since ``since`` that satisfy ``where`` (waits for one)."""
    deadline = time.monotonic() + timeout
    while True:
        found = api(stack, "POST", "/events/filter", json={
            "filter": {"event": {"name": [name]}, "occurred": {"since": since}},
            "limit": 50}).json()["events"]
        found = [e for e in found if where(e)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def emulator(stack: LocalStack, action: str) -> object:
    return httpx.get(f"{stack.emulator_url}/_emulator/{action}").json()


def test_bulk_update_deployment(stack) -> None:
    state = trigger(stack, "posthog-bulk-update-group-properties", {
        "updates": [{"group_type_index": 0, "group_key": "company-00001",
                     "set": {"plan": "e2e-plan"}}], "dry_run": False})
    assert state["type"] == "COMPLETED", state
    groups = emulator(stack, "state")["groups"]
    assert groups['[1, 0, "company-00001"]']["group_properties"]["plan"] == "e2e-plan"


def test_bulk_update_deployment_reads_parquet_from_s3(stack, s3_server) -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    data = io.BytesIO()
    pq.write_table(pa.table({"group_type_index": [0, 0],
                             "group_key": ["company-00004", "company-00005"],
                             "plan": ["from-s3", None], "seats": [None, 77]}), data)
    url = s3_server.put("bucket/groups.parquet", data.getvalue())
    # As the UI's Run form sends it: a bucket path, no rows.
    state = trigger(stack, "posthog-bulk-update-group-properties",
                    {"source_path": url, "dry_run": False})
    assert state["type"] == "COMPLETED", state
    groups = emulator(stack, "state")["groups"]
    assert groups['[1, 0, "company-00004"]']["group_properties"]["plan"] == "from-s3"
    assert groups['[1, 0, "company-00005"]']["group_properties"]["seats"] == 77


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
    assert "06:00 UTC" in rotation["description"]


def test_overlap_and_audit_deployments_ship_as_documented(stack) -> None:
    creds = {"$ref": {"block_document_id": block_id(stack, "posthog-credentials", "posthog")}}
    overlap = deployment(stack, "posthog-rotate-project-secret-api-keys", "overlap")
    assert overlap["parameters"]["strategy"] == "overlap"
    assert overlap["parameters"]["credentials"] == creds  # pinned like the others
    assert [s["active"] for s in overlap["schedules"]] == [False]  # paused: replaces the roll
    audit = deployment(stack, "posthog-audit-project-secret-api-keys")
    assert audit["parameters"]["credentials"] == creds and audit["parameters"]["repair"] is False
    [hourly] = audit["schedules"]
    assert hourly["active"] and hourly["schedule"]["cron"] == "15 * * * *"
    # The audit's runs are tested in tests/test_key_drift_audit.py, the overlap's with the
    # shipped parameters in tests/test_secret_jobs_server.py.


def block_id(stack: LocalStack, type_slug: str, name: str) -> str:
    return api(stack, "GET", f"/block_types/slug/{type_slug}/block_documents/name/{name}"
               ).json()["id"]


def test_forms_offer_block_pickers_and_defaults_reference_saved_blocks(stack) -> None:
    creds = {"$ref": {"block_document_id": block_id(stack, "posthog-credentials", "posthog")}}
    notify = {"$ref": {"block_document_id": block_id(stack, "custom-webhook", "posthog-notify")}}
    for flow_name in ("posthog-bulk-update-group-properties", "posthog-reset-sharing-passwords",
                      "posthog-rotate-project-secret-api-keys"):
        dep = deployment(stack, flow_name)
        # A reference the UI's picker shows (pinned from prefect.yaml's slug), never data.
        assert dep["parameters"]["credentials"] == creds, flow_name
        schema = dep["parameter_openapi_schema"]
        assert "``" not in json.dumps(schema), flow_name  # descriptions render as Markdown
        assert "store" not in schema["properties"]  # a callable cannot come from a form
        if "notification" in schema["properties"]:
            assert dep["parameters"]["notification"] == notify
            slugs = {schema["definitions"][ref["$ref"].split("/")[-1]]["block_type_slug"]
                     for ref in schema["properties"]["notification"]["anyOf"] if "$ref" in ref}
            assert {"slack-webhook", "custom-webhook", "ms-teams-webhook"} <= slugs
            assert "notification-block" not in slugs  # abstract: nothing to pick
    reset = deployment(stack, "posthog-reset-sharing-passwords")
    assert reset["parameter_openapi_schema"]["properties"]["targets"]["minItems"] == 1
    assert reset["name"] == "reset-share-passwords" and "targets" not in reset["parameters"]


def writes(stack: LocalStack) -> list[dict]:
    return [r for r in emulator(stack, "requests") if r["method"] not in ("GET", "HEAD")]


@pytest.mark.parametrize(("flow_name", "parameters", "named"), [
    ("posthog-reset-sharing-passwords", {"credentials": "posthg"}, "'posthg'"),
    ("posthog-reset-sharing-passwords", {"notification": "custom-webhook/notfy"}, "'notfy'"),
    ("posthog-rotate-project-secret-api-keys",
     {"notification": "slack-webhook/alerts"}, "'alerts'"),
    ("posthog-rotate-project-secret-api-keys",
     {"credentials": "phx_pasted_key_by_mistake"}, "with the given name")])
def test_missing_block_names_fail_before_any_write(stack, flow_name, parameters,
                                                   named) -> None:
    if "reset" in flow_name:
        parameters = {"targets": [{"resource": "insight", "id": "1"}], **parameters}
    before = len(writes(stack))
    run = run_to_end(stack, flow_name, parameters)
    assert run["state"]["type"] == "FAILED"
    message = run["state"]["message"]
    assert named in message and ("saved ones:" in message or "none is saved" in message), message
    assert "phx_pasted" not in message  # a pasted secret is not echoed back
    assert len(writes(stack)) == before


def test_a_quick_run_of_the_reset_cannot_do_nothing(stack) -> None:
    dep = deployment(stack, "posthog-reset-sharing-passwords")
    response = api(stack, "POST", f"/deployments/{dep['id']}/create_flow_run",
                   json={"parameters": {}})
    assert response.status_code == 409 and "targets" in response.text


def test_run_deployment_from_another_flow(stack) -> None:
    @flow
    def pipeline() -> str:
        run = run_deployment(
            "posthog-bulk-update-group-properties/update-group-properties", parameters={
                "updates": [{"group_type_index": 0, "group_key": "company-00002",
                             "set": {"from_pipeline": True}}], "dry_run": False},
            timeout=120)
        return run.state.type.value

    with temporary_settings({PREFECT_API_URL: stack.api_url}):
        assert pipeline() == "COMPLETED"
    groups = emulator(stack, "state")["groups"]
    assert groups['[1, 0, "company-00002"]']["group_properties"]["from_pipeline"] is True


# -- events and triggers ----------------------------------------------------------------------

def stored_secret(stack: LocalStack, name: str) -> str:
    response = api(stack, "GET", f"/block_types/slug/secret/block_documents/name/{name}",
                   params={"include_secrets": "true"})
    return response.json()["data"]["value"]


def test_rotation_announces_each_key_and_the_trigger_starts_the_follower(stack) -> None:
    since = now_iso()
    [key] = [k for k in emulator(stack, "state")["project_secret_api_keys"].values()
             if k["label"] == "flags-edge"]
    run = run_to_end(stack, "posthog-rotate-project-secret-api-keys",
                     {"selector": {"labels": ["flags-edge"]}})
    assert run["state"]["type"] == "COMPLETED", run["state"]
    resource_id = f"posthog.project.1.secret-api-key.{key['id']}"
    [event] = events(stack, "posthog.secret-api-key.rotated", since,
                     where=lambda e: e["resource"]["prefect.resource.id"] == resource_id)
    stored_in = "Secret block 'posthog-psak-flags-edge'"
    live = emulator(stack, "state")["project_secret_api_keys"][key["id"]]
    assert event["resource"]["posthog.label"] == "flags-edge"
    assert event["resource"]["posthog.mask"] == live["mask_value"]
    assert event["resource"]["posthog.stored-in"] == stored_in
    assert event["resource"]["posthog.dry-run"] == "false"
    assert event["payload"]["verification"].startswith("live value is the stored roll")
    related = {r["prefect.resource.id"] for r in event["related"]}
    assert f"prefect.flow-run.{run['id']}" in related and "posthog.project.1" in related
    value = stored_secret(stack, "posthog-psak-flags-edge")
    assert value.startswith("phs_") and value[4:] not in json.dumps(event)

    # The shipped trigger runs the follower with the key's id and label, never its value.
    follower = deployment(stack, "posthog-follow-key-rotation")
    deadline = time.monotonic() + 90
    runs: list[dict] = []
    while time.monotonic() < deadline and not runs:
        runs = [r for r in api(stack, "POST", "/flow_runs/filter", json={
            "deployments": {"id": {"any_": [follower["id"]]}}}).json()
            if r["parameters"].get("key_id") == key["id"]]
        time.sleep(1)
    assert runs, "the trigger did not start the follower"
    finished = wait_for_run(stack, runs[0]["id"], "follower")
    assert finished["state"]["type"] == "COMPLETED", finished["state"]
    assert finished["parameters"] == {"key_id": key["id"], "label": "flags-edge",
                                      "stored_in": stored_in, "credentials": {"$ref": {
                                          "block_document_id": block_id(
                                              stack, "posthog-credentials", "posthog")}}}
    assert value[4:] not in json.dumps(finished)


def test_bulk_and_reset_runs_announce_themselves(stack) -> None:
    since = now_iso()
    dry = run_to_end(stack, "posthog-bulk-update-group-properties", {
        "updates": [{"group_type_index": 0, "group_key": "company-00003",
                     "set": {"plan": "events-plan"}}], "dry_run": True})
    assert dry["state"]["type"] == "COMPLETED"
    [bulk] = events(stack, "posthog.groups.bulk-update.completed", since, where=lambda e: any(
        r["prefect.resource.id"] == f"prefect.flow-run.{dry['id']}" for r in e["related"]))
    assert bulk["resource"]["prefect.resource.id"] == "posthog.project.1.groups"
    assert bulk["resource"]["posthog.dry-run"] == "true"
    assert bulk["resource"]["posthog.write-path"] == "api"
    assert (bulk["payload"]["planned"], bulk["payload"]["applied"]) == (1, 0)

    planned = run_to_end(stack, "posthog-reset-sharing-passwords", {
        "targets": [{"resource": "insight", "id": "2"}], "dry_run": True})
    assert planned["state"]["type"] == "COMPLETED"
    assert events(stack, "posthog.sharing.password-reset-planned", since)
    reset = run_to_end(stack, "posthog-reset-sharing-passwords", {
        "targets": [{"resource": "insight", "id": "2"}]})
    assert reset["state"]["type"] == "COMPLETED", reset["state"]
    [event] = events(stack, "posthog.sharing.password-reset", since)
    assert event["resource"]["prefect.resource.id"] == "posthog.project.1.insight.2"
    live = [c for c in emulator(stack, "state")["sharing"].values()
            if c["resource"] == "1:insights:2" and c["expires_at"] is None]
    assert event["payload"]["share_url"].endswith(f"/shared/{live[0]['access_token']}")
    assert event["resource"]["posthog.share-url"] == event["payload"]["share_url"]
    password = stored_secret(stack, "posthog-share-insight-2")
    assert password not in json.dumps(event)
