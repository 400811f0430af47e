"""Bulk updates through ingestion: the emulator's capture endpoints as PostHog serves them
(PostHog's own Python SDK as one client), and the bulk flow's capture path — verified by
reading back, with dropped and delayed ingestion, wrong tokens, mixed rows, resumption and
the `auto` choice. Every count is checked against the emulator's own records."""

from __future__ import annotations

import gzip
import json
import time

import httpx
import pytest
from posthog import Posthog

from prefect_posthog.flows import GroupPropertyUpdate, bulk_capture, bulk_update_group_properties
from tests.helpers import ADMIN_KEY, until

TOKEN = "phc_emulator_project_token"


def groups(emulator, gti: int = 0) -> dict[str, dict]:
    return {json.loads(k)[2]: g["group_properties"]
            for k, g in emulator.read_state()["groups"].items() if json.loads(k)[1] == gti}


def ingestion(emulator) -> dict:
    return emulator.admin("GET", "ingestion")


def api_writes(emulator) -> int:
    return len([r for r in emulator.read_requests() if r["operation"] in (
        "update_group_property", "delete_group_property", "create_group")])


@pytest.fixture
def companies(emulator):
    emulator.configure(ingestion_lag=0.3)
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": f"c{i:03d}",
                               "group_properties": {"plan": "free", "seats": i}}
                              for i in range(300)]})


def rows(n: int = 300, changed: int = 300) -> list[GroupPropertyUpdate]:
    return [GroupPropertyUpdate(group_type_index=0, group_key=f"c{i:03d}",
                                set={"plan": "pro" if i < changed else "free", "seats": i})
            for i in range(n)]


# -- capture endpoints -----------------------------------------------------------------------

def test_posthog_python_sdk_group_identify_lands(emulator) -> None:
    emulator.configure(ingestion_lag=0.2)
    sdk = Posthog(TOKEN, host=emulator.url, gzip=True, flush_interval=0.1)
    sdk.group_identify("company", "sdk-co", {"plan": "pro", "seats": 3}, distinct_id="ops")
    sdk.group_identify("workspace", "ws-1", {"region": "eu"})  # a new type, created on use
    sdk.flush()
    sdk.shutdown()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not {"sdk-co", "ws-1"} <= (
            set(groups(emulator)) | set(groups(emulator, 2))):
        time.sleep(0.1)
    assert groups(emulator)["sdk-co"] == {"plan": "pro", "seats": 3}
    types = httpx.get(f"{emulator.url}/api/projects/1/groups_types/",
                      headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert {t["group_type"]: t["group_type_index"] for t in types}["workspace"] == 2
    assert groups(emulator, 2)["ws-1"] == {"region": "eu"}


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"not json", 400, "request_parsing_error"),
    (b"\x1f\x8b broken gzip", 400, "request_decoding_error"),
    (json.dumps({"api_key": TOKEN, "batch": []}).encode(), 400, "empty_batch"),
    (json.dumps({"batch": [{"event": "x", "distinct_id": "d"}]}).encode(), 401,
     "ingest_key_required"),
    (json.dumps({"api_key": "bad token!", "batch": [{"event": "x", "distinct_id": "d"}]})
     .encode(), 403, "ingest_key_unknown"),
    (json.dumps({"api_key": TOKEN, "batch": [{"distinct_id": "d"}]}).encode(), 400,
     "missing_event_name"),
    (json.dumps({"api_key": TOKEN, "batch": [{"event": "x"}]}).encode(), 400,
     "missing_distinct_id"),
])
def test_capture_errors_as_posthog_answers_them(emulator, body, status, code) -> None:
    response = httpx.post(f"{emulator.url}/batch/", content=body)
    assert response.status_code == status
    assert response.json() == {"status": status, "code": code, "error": response.json()["error"]}


def test_capture_accepts_every_route_gzip_by_magic_and_drops_unknown_tokens(emulator) -> None:
    emulator.configure(ingestion_lag=0)
    event = {"event": "$groupidentify", "distinct_id": "d", "properties": {
        "$group_type": "company", "$group_key": "gz", "$group_set": {"zipped": True}}}
    zipped = gzip.compress(json.dumps({"api_key": TOKEN, "batch": [event]}).encode())
    assert httpx.post(f"{emulator.url}/batch/", content=zipped).json() == {"status": "Ok"}
    for route in ("e", "i/v0/e/", "capture/", "track"):
        single = {**event, "api_key": TOKEN, "properties": {**event["properties"],
                                                             "$group_key": route}}
        assert httpx.post(f"{emulator.url}/{route}", json=single).status_code == 200
    unknown = {"api_key": "phc_unknown_project", "batch": [event]}
    assert httpx.post(f"{emulator.url}/batch", json=unknown).status_code == 200  # and dropped
    too_big = b"[" + b" " * (2 * 1024 * 1024 + 1) + b"]"
    assert httpx.post(f"{emulator.url}/e/", content=too_big).status_code == 413
    emulator.admin("POST", "ingestion", {"flush": True})
    assert groups(emulator)["gz"] == {"zipped": True} and "track" in groups(emulator)
    assert ingestion(emulator)["dropped"] == 1


def test_project_and_query_endpoints(emulator, companies) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    assert httpx.get(f"{emulator.url}/api/projects/1/", headers=headers).json()[
        "api_token"] == TOKEN
    query = {"kind": "HogQLQuery", "values": {"idx": 0, "after": "c297"},
             "query": "select key, properties from groups where index = {idx} and key > "
                      "{after} order by key limit 50000"}
    data = httpx.post(f"{emulator.url}/api/projects/1/query/", headers=headers,
                      json={"query": query}).json()
    assert data["results"] == [["c298", '{"plan": "free", "seats": 298}'],
                               ["c299", '{"plan": "free", "seats": 299}']]
    bad = httpx.post(f"{emulator.url}/api/projects/1/query/", headers=headers,
                     json={"query": {**query, "query": "select * from events"}})
    assert bad.status_code == 400


# -- the capture path ------------------------------------------------------------------------

def test_capture_path_writes_verifies_and_accounts_exactly(credentials, emulator,
                                                           companies) -> None:
    report = bulk_update_group_properties(credentials, updates=rows(300, changed=120),
                                          write_path="capture", verify_timeout_seconds=30)
    assert report.write_path == "capture"
    assert (report.applied, report.unchanged, report.failed) == (120, 180, 0)
    assert report.events == 120 == ingestion(emulator)["events"]
    assert report.writes == 0 == api_writes(emulator)
    queries = [r for r in emulator.read_requests() if r["operation"] == "query"]
    assert report.reads == 1 + len(queries) and len(queries) <= 4  # types + HogQL reads
    state = groups(emulator)
    assert all(state[f"c{i:03d}"] == {"plan": "pro" if i < 120 else "free", "seats": i}
               for i in range(300))
    assert {o.write_path for o in report.items if o.status == "applied"} == {"capture"}


def test_dropped_ingestion_is_caught_and_written_through_the_api(credentials, emulator,
                                                                 companies) -> None:
    emulator.admin("POST", "ingestion", {"schedule": [{"fault": "dropped"}]})
    report = bulk_update_group_properties(credentials, updates=rows(50), write_path="capture",
                                          verify_timeout_seconds=2)
    assert (report.applied, report.failed) == (50, 0)
    assert report.events == 50 and report.writes == 50 == api_writes(emulator)
    retried = [o for o in report.items if o.write_path == "api-after-capture"]
    assert len(retried) == 50 and "not visible" in retried[0].reason
    assert all(groups(emulator)[f"c{i:03d}"]["plan"] == "pro" for i in range(50))


def test_delayed_ingestion_is_waited_for(credentials, emulator, companies) -> None:
    emulator.admin("POST", "ingestion", {"schedule": [{"fault": "delayed"}],
                                         "delay_seconds": 2.5})
    report = bulk_update_group_properties(credentials, updates=rows(40), write_path="capture",
                                          verify_timeout_seconds=30)
    assert (report.applied, report.writes) == (40, 0)
    assert {o.write_path for o in report.items} == {"capture"}


@pytest.mark.parametrize("token", ["phc_not_this_project", "not a token!"])
def test_a_wrong_token_is_caught_by_verification(credentials, emulator, companies,
                                                 token) -> None:
    report = bulk_update_group_properties(credentials, updates=rows(20), write_path="capture",
                                          project_token=token, verify_timeout_seconds=1.5)
    assert (report.applied, report.failed, report.writes) == (20, 0, 20)
    # A well-formed unknown token is accepted (and dropped); a malformed one refused.
    assert report.events == (20 if token.startswith("phc_") else 0)
    assert {o.write_path for o in report.items} == {"api-after-capture"}


def test_mixed_set_and_unset_rows_take_both_paths(credentials, emulator, companies) -> None:
    mixed = [GroupPropertyUpdate(group_type_index=0, group_key="c000", set={"plan": "pro"},
                                 unset=["seats"]),
             GroupPropertyUpdate(group_type_index=0, group_key="c001", set={"plan": "team"}),
             GroupPropertyUpdate(group_type_index=0, group_key="c002", unset=["nothing-here"])]
    report = bulk_update_group_properties(credentials, updates=mixed, write_path="capture",
                                          verify_timeout_seconds=30)
    by_key = {o.group_key: o for o in report.items}
    assert by_key["c000"].write_path == "api" and by_key["c000"].status == "applied"
    assert by_key["c001"].write_path == "capture" and by_key["c001"].status == "applied"
    assert by_key["c002"].status == "unchanged"
    state = groups(emulator)
    assert state["c000"] == {"plan": "pro"} and state["c001"]["plan"] == "team"
    assert report.writes == 2 and report.events == 1


def test_resume_after_a_crash_mid_verification(credentials, emulator, companies,
                                               monkeypatch) -> None:
    def crash(*args, **kwargs):
        raise RuntimeError("worker lost during verification")

    monkeypatch.setattr(bulk_capture, "verify_captured", crash)
    with pytest.raises(RuntimeError, match="worker lost"):
        bulk_update_group_properties(credentials, updates=rows(100), write_path="capture")
    monkeypatch.undo()
    sent_before = ingestion(emulator)["events"]
    # The events sent before the crash are ingested meanwhile (every row's values in place).
    assert until(lambda: all(groups(emulator)[f"c{i:03d}"]["plan"] == "pro"
                             for i in range(100)), seconds=60)
    report = bulk_update_group_properties(credentials, updates=rows(100), write_path="capture")
    assert (report.unchanged, report.applied, report.events) == (100, 0, 0)
    assert ingestion(emulator)["events"] == sent_before  # nothing sent twice


def test_auto_uses_the_api_for_small_jobs_and_capture_beyond_the_budget(credentials,
                                                                        emulator) -> None:
    emulator.configure(ingestion_lag=0.2)
    n = 150
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": f"g{i:04d}",
                               "group_properties": {"a": 0, "b": 0}} for i in range(n)]})
    # PostHog's budget scaled down tenfold, so the test stays quick either way.
    budget = credentials.model_copy(update={"rate_limit": "48/min,480/h"})
    small = bulk_update_group_properties(budget, updates=[GroupPropertyUpdate(
        group_type_index=0, group_key="g0000", set={"a": 1})])
    assert (small.write_path, small.events, small.writes) == ("api", 0, 1)
    # 2 x 150 = 300 writes: six minutes at 48/min, over the five-minute line, so capture.
    big = [GroupPropertyUpdate(group_type_index=0, group_key=f"g{i:04d}", set={"a": 2, "b": 2})
           for i in range(n)]
    report = bulk_update_group_properties(budget, updates=big, verify_timeout_seconds=30)
    assert (report.write_path, report.applied, report.events, report.writes) == (
        "capture", n, n, 0)
    # Same size again, but only one group differs now: auto reads once and uses the API.
    big[0] = big[0].model_copy(update={"set": {"a": 3, "b": 3}})
    again = bulk_update_group_properties(budget, updates=big)
    assert (again.write_path, again.writes, again.events, again.unchanged) == (
        "api", 2, 0, n - 1)


def test_capture_dry_run_sends_nothing(credentials, emulator, companies) -> None:
    report = bulk_update_group_properties(credentials, updates=rows(30), write_path="capture",
                                          dry_run=True)
    assert report.planned == 30 and report.events == 0 == ingestion(emulator)["events"]
    assert {o.write_path for o in report.items} == {"capture"}
