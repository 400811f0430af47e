"""Contract tests, over real HTTP: PostHog's limits the emulator enforces.

The query API's 3 concurrent queries per team, keyset-only paging and row caps
(`posthog/clickhouse/client/limit.py`, `posthog/hogql/user_query_validator.py`,
`hogql_query_runner.py`); what ingestion refuses of ``$groupidentify`` (Node's
`validate-event-properties.ts`, `process-groups-step.ts`, `group-type-manager.ts`) and
capture's per-event limit (`sinks/kafka.rs`); the ``/api/environments/`` deprecation headers
(`posthog/middleware.py`); and a large group type read back page by page.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from prefect_posthog.client import QUERY_MAX_ROWS
from prefect_posthog.emulator import Emulator
from tests.helpers import ADMIN_KEY

TOKEN = "phc_emulator_project_token"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
GROUPS_QUERY = "select key, properties from groups where index = {idx}"


def hogql(emulator: Emulator, text: str, project: int = 1, **values) -> httpx.Response:
    return httpx.post(f"{emulator.url}/api/projects/{project}/query/", headers=AUTH, timeout=60,
                      json={"query": {"kind": "HogQLQuery", "query": text,
                                      "values": {"idx": 0, **values}}})


# -- /api/environments/ --------------------------------------------------------------------

def test_environments_answers_say_they_are_deprecated(emulator) -> None:
    ok = httpx.get(f"{emulator.url}/api/environments/1/groups/?group_type_index=0",
                   headers=AUTH)
    assert ok.status_code == 200
    assert ok.headers["deprecation"] == "true"
    assert ok.headers["sunset"] == "Fri, 31 Jul 2026 00:00:00 GMT"
    assert ok.headers["link"] == ('</api/projects/1/groups/?group_type_index=0>; '
                                  'rel="successor-version"')
    for refused in (httpx.get(f"{emulator.url}/api/environments/1/groups/"),  # 401
                    httpx.delete(f"{emulator.url}/api/environments/1/groups/", headers=AUTH),
                    httpx.get(f"{emulator.url}/api/environments/99/groups_types/",
                              headers=AUTH)):
        assert refused.status_code in (401, 404, 405) and refused.headers["deprecation"] == "true"
    # a path with no /api/projects/ counterpart is not rewritten, so not announced
    assert "deprecation" not in httpx.get(f"{emulator.url}/api/environments/1/nope/").headers
    assert "deprecation" not in httpx.get(f"{emulator.url}/api/projects/1/groups/?"
                                          "group_type_index=0", headers=AUTH).headers


# -- the query API ------------------------------------------------------------------------

def test_a_fourth_concurrent_query_waits_then_gets_429(emulator) -> None:
    emulator.seed({"projects": [{"id": 2}]})
    # Queries run 3 s: all four arrive while the first three run, however loaded the machine.
    emulator.configure(query_seconds=3.0, query_queue_seconds=0.3)
    query = GROUPS_QUERY + " order by key limit 10"
    with ThreadPoolExecutor(5) as pool:
        same_team = [pool.submit(hogql, emulator, query) for _ in range(4)]
        other_team = pool.submit(hogql, emulator, query, project=2)
        answers = [f.result() for f in same_team]
    assert sorted(r.status_code for r in answers) == [200, 200, 200, 429]
    assert other_team.result().status_code == 200  # slots are per team
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json() == {"type": "throttled_error", "code": "throttled", "attr": None,
                              "detail": "Too many queries are running right now — please try "
                                        "again in a moment."}
    assert "retry-after" not in refused.headers
    # With time to wait for a slot, the fourth runs once one frees up.
    emulator.configure(query_queue_seconds=5)
    start = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        statuses = [f.result().status_code for f in
                    [pool.submit(hogql, emulator, query) for _ in range(4)]]
    assert statuses == [200] * 4 and time.monotonic() - start >= 5.9


def test_queries_page_by_key_only_and_has_more_follows_posthog(emulator) -> None:
    emulator.seed({"generate_groups": {"group_type_index": 0, "count": 150,
                                       "key_format": "g{i:03d}",
                                       "group_properties": {"plan": "free"}}})
    offset = hogql(emulator, GROUPS_QUERY + " order by key limit 10 offset 10")
    assert offset.status_code == 400
    assert offset.json()["code"] == "hogql_query_error"
    assert offset.json()["detail"].startswith("OFFSET is not supported on queries made with a "
                                              "personal API key.")
    explicit = hogql(emulator, GROUPS_QUERY + " and key > {after} order by key limit 100",
                     after="g049").json()
    assert [r[0] for r in explicit["results"]] == [f"g{i:03d}" for i in range(50, 150)]
    assert explicit["hasMore"] is None  # an explicit LIMIT runs no paginator
    assert explicit["results"][0][1] == '{"plan": "free"}'
    default = hogql(emulator, GROUPS_QUERY + " order by key").json()
    assert len(default["results"]) == 100 and default["hasMore"] is True
    assert hogql(emulator, GROUPS_QUERY + " order by key limit 999999").json()["results"][
        -1][0] == "g149"
    big = hogql(emulator, GROUPS_QUERY + " and key in {keys} order by key limit 10",
                keys=["k" * 100] * 11_000)
    assert big.status_code == 400 and "Max query size exceeded" in big.json()["detail"]


def test_a_large_type_reads_back_in_pages_of_50000(emulator, client) -> None:
    seeded = emulator.seed({"generate_groups": {
        "group_type_index": 0, "count": 120_000, "key_format": "company-{i:07d}",
        "group_properties": {"plan": "free", "seats": 1}}})
    assert seeded["generated_groups"] == 120_000
    keys, pages, after = [], 0, None
    while True:  # keyset pages, as a verifier reads them (OFFSET is refused)
        page = client.query_groups(0, after=after)
        pages += 1
        keys += [key for key, props in page if props["plan"] == "free"]
        if len(page) < QUERY_MAX_ROWS:
            break
        after = page[-1][0]
    assert keys == [f"company-{i:07d}" for i in range(120_000)] and pages == 3
    newest = httpx.get(f"{emulator.url}/api/projects/1/groups/", params={"group_type_index": 0},
                       headers=AUTH).json()
    assert newest["results"][0]["group_key"] == "company-0119999" and newest["next"]


# -- ingestion -----------------------------------------------------------------------------

def identify(key: object, group_set: object = None, group_type: str = "company",
             **extra: object) -> dict:
    props = {"$group_type": group_type, "$group_key": key, **extra}
    if group_set is not None:
        props["$group_set"] = group_set
    return {"event": "$groupidentify", "distinct_id": "bulk", "properties": props}


def capture(emulator: Emulator, events: list[dict]) -> httpx.Response:
    return httpx.post(f"{emulator.url}/batch/", json={"api_key": TOKEN, "batch": events})


def ingest(emulator: Emulator, events: list[dict]) -> dict:
    assert capture(emulator, events).status_code == 200
    emulator.admin("POST", "ingestion", {"flush": True})
    return emulator.admin("GET", "ingestion")


def find(emulator: Emulator, key: str, gti: int = 0) -> dict | None:
    r = httpx.get(f"{emulator.url}/api/projects/1/groups/find",
                  params={"group_type_index": gti, "group_key": key}, headers=AUTH)
    return r.json() if r.status_code == 200 else None


def test_ingestion_refuses_what_posthog_refuses(emulator) -> None:
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": "kept",
                               "group_properties": {"plan": "pro"}}]})
    stats = ingest(emulator, [
        identify("k" * 401, {"a": 1}),                   # dropped: group_key_too_long
        identify("\U0001F600" * 201, {"a": 1}),          # 402 UTF-16 units: too long
        identify("\U0001F600" * 200, {"a": 1}),          # exactly 400: kept
        identify("kept", "not an object"),               # invalid_group_set: untouched
        identify("kept", {"seats": None}),               # null is stored, not unset
        identify("empty", {}),                           # {} creates a missing group
        identify(0, {"a": 1}),                           # falsy key: no group, no warning
        identify(123, {"n": 1}),                         # stringified
        identify("nul\x00key", {"a": 1}),                # NUL becomes U+FFFD
        identify("personless", {"a": 1}, **{"$process_person_profile": False}),
    ])
    reasons = stats["dropped_reasons"]
    assert reasons["group_key_too_long"] == 2 and reasons["invalid_group_set"] == 1
    assert reasons["invalid_event_when_process_person_profile_is_false"] == 1
    assert find(emulator, "k" * 401) is None and find(emulator, "\U0001F600" * 200)
    assert find(emulator, "kept")["group_properties"] == {"plan": "pro", "seats": None}
    assert find(emulator, "empty")["group_properties"] == {}
    assert find(emulator, "0") is None and find(emulator, "123")["group_properties"] == {"n": 1}
    assert find(emulator, "nul\ufffdkey") and find(emulator, "personless") is None


def test_a_sixth_group_type_is_ignored_and_counted(emulator) -> None:
    types = ["organization", "team", "region", "plan"]  # 0 is "company" already
    stats = ingest(emulator, [identify("x", {"a": 1}, group_type=t) for t in types]
                   + [identify("x", {"a": 1}, group_type="sixth")])
    assert stats["dropped_reasons"]["group_type_limit"] == 1
    names = [t["group_type"] for t in httpx.get(f"{emulator.url}/api/projects/1/groups_types/",
                                                headers=AUTH).json()]
    assert "sixth" not in names and len(names) == 5


def test_an_oversized_event_fails_its_request_but_not_the_events_before_it(emulator) -> None:
    big = identify("big", {"blob": "x" * 1_000_001})
    answer = capture(emulator, [identify("before", {"a": 1}), big, identify("after", {"a": 1})])
    assert answer.status_code == 413 and answer.json()["code"] == "payload_too_large"
    emulator.admin("POST", "ingestion", {"flush": True})
    assert find(emulator, "before") and find(emulator, "big") is None
    assert find(emulator, "after") is None
    reasons = emulator.admin("GET", "ingestion")["dropped_reasons"]
    assert reasons["message_size_too_large"] == 1 and reasons["after_message_size_too_large"] == 1


@pytest.mark.parametrize("body", [b"x" * (20 * 1024 * 1024 + 1)])
def test_an_oversized_body_is_refused_whole(emulator, body) -> None:
    answer = httpx.post(f"{emulator.url}/batch/", content=body)
    assert answer.status_code == 413
    assert answer.json()["error"].startswith("maximum event size exceeded")
    assert json.dumps(emulator.admin("GET", "ingestion")["requests"]) == "0"
