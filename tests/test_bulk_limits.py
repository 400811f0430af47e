"""What PostHog would drop silently is routed per row, with a reason; reads stay within
PostHog's query limits (keyset pages, at most 3 queries in flight, the 429 of a fourth
retried, the HogQL budget respected); and a 20,000-row Parquet job runs the whole
on-disk path, every row applied and read back."""

from __future__ import annotations

import json
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prefect import flow
from prefect.utilities.annotations import quote

from prefect_posthog.flows import (
    GroupPropertyUpdate,
    JobFailedError,
    bulk_update_group_properties,
)
from prefect_posthog.flows.bulk_capture import OVER_BUDGET, Verification, verify_captured
from prefect_posthog.flows.bulk_reads import KeyRange, QueryBudget, key_ranges, read_pages
from prefect_posthog.flows.bulk_store import BulkStore


def groups(emulator, gti: int = 0) -> dict[str, dict]:
    return {json.loads(k)[2]: g["group_properties"]
            for k, g in emulator.read_state()["groups"].items() if json.loads(k)[1] == gti}


def queries(emulator) -> list[dict]:
    return [r for r in emulator.read_requests() if r["operation"] == "query"]


def test_what_ingestion_would_drop_goes_through_the_api_with_a_reason(credentials, emulator,
                                                                     tmp_path) -> None:
    emulator.configure(ingestion_lag=0.2)
    emoji_key = "🙂" * 300  # 300 characters, 600 UTF-16 code units: over ingestion's 400
    big = "x" * (950 * 1024)  # an event over the 900 KiB capture cap
    long_type = "t" * 401  # PostHog's group_type column holds at most 400 characters
    emulator.seed({"group_types": [{"group_type_index": 3, "name": long_type}],
                   "groups": [{"group_type_index": gti, "group_key": key,
                               "group_properties": {"plan": "free"}}
                              for gti, key in ((0, emoji_key), (0, "big"), (0, "plain"),
                                               (0, "same"), (3, "long-type"))]})
    rows = [GroupPropertyUpdate(group_type_index=0, group_key=emoji_key, set={"plan": "pro"}),
            GroupPropertyUpdate(group_type_index=0, group_key="big", set={"bio": big}),
            GroupPropertyUpdate(group_type_index=0, group_key="plain", set={"plan": "pro"}),
            GroupPropertyUpdate(group_type_index=0, group_key="same", set={"plan": "free"}),
            GroupPropertyUpdate(group_type_index=3, group_key="long-type", set={"plan": "pro"}),
            GroupPropertyUpdate(group_type_index=0, group_key="ghost", set={}),
            GroupPropertyUpdate(group_type_index=4, group_key="untyped", set={"plan": "pro"})]
    report = bulk_update_group_properties(credentials, updates=rows, write_path="capture",
                                          verify_timeout_seconds=30)
    by_key = {o.group_key: o for o in report.items}
    assert (report.applied, report.failed, report.events) == (4, 0, 1)
    assert by_key["plain"].write_path == "capture"
    for key, text in ((emoji_key, "group_key_too_long"), ("big", "900 KiB"),
                      ("long-type", "over 400 characters")):
        assert (by_key[key].status, by_key[key].write_path) == ("applied", "api"), key
        assert text in by_key[key].reason, by_key[key].reason
    assert by_key["same"].status == "unchanged"  # an empty $group_set is never sent
    assert {by_key[k].status for k in ("ghost", "untyped")} == {"skipped"}
    assert groups(emulator)[emoji_key] == {"plan": "pro"} and groups(emulator)["big"]["bio"]
    assert groups(emulator, 3)["long-type"] == {"plan": "pro"}
    assert not emulator.admin("GET", "ingestion")["dropped_reasons"]  # nothing lost
    # A missing group with nothing to set is created by `{}` only with create_missing; a
    # group both removing and nulling cannot be written in one run; a type the project has
    # no name for cannot be named by an event.
    both = GroupPropertyUpdate(group_type_index=0, group_key="same", unset=["plan"],
                               set_null=["seats"])
    with pytest.raises(JobFailedError, match="1 of 3 items failed"):
        bulk_update_group_properties(credentials, updates=[*rows[5:], both],
                                     create_missing=True, write_path="capture",
                                     verify_timeout_seconds=30,
                                     report_path=str(tmp_path / "outcomes.jsonl"))
    outcome = {o["group_key"]: o for o in map(json.loads, (tmp_path / "outcomes.jsonl").open())}
    assert outcome["ghost"]["status"] == "applied" and groups(emulator)["ghost"] == {}
    assert outcome["same"]["status"] == "failed" and "two runs" in outcome["same"]["reason"]
    assert (outcome["untyped"]["status"], outcome["untyped"]["write_path"]) == ("applied",
                                                                                "api")
    assert "no name in this project" in outcome["untyped"]["reason"]
    assert groups(emulator, 4)["untyped"] == {"plan": "pro"}


def test_reads_split_at_input_keys_at_most_3_at_a_time_with_no_wasted_call(
        emulator, client) -> None:
    # PostHog's pages are 50,000 rows; pages of 1,000 show the same splitting at a 50th
    # of the cost (the benchmark reads a million groups in 50,000-row pages).
    n, page = 2400, 1000
    emulator.seed({"generate_groups": {"group_type_index": 0, "count": n + 100,
                                       "key_format": "k{i:06d}"}})
    # Each query runs 2 s, so the three overlap however slowly the readers start.
    emulator.configure(query_seconds=2.0)
    with BulkStore.temporary() as store:
        for i in range(n):
            store.add(i + 1, GroupPropertyUpdate(group_type_index=0, group_key=f"k{i:06d}"))
        store.close_input()
        ranges = key_ranges(store, page_rows=page)
        # 2,400 groups: three ranges of whole pages, bounded by input keys, so the 100
        # groups past the input's last key are never read.
        assert [(r.start, r.after, r.end, r.pages) for r in ranges] == [
            ("k000000", None, "k000999", 1), (None, "k000999", "k001999", 1),
            (None, "k001999", "k002399", 1)]
        budget = QueryBudget()
        seen = [key for page in read_pages(client, ranges, budget) for key, _ in page.rows]
    assert sorted(seen) == [f"k{i:06d}" for i in range(n)] and budget.used == 3
    stats = emulator.admin("GET", "queries")
    assert stats["peak"] == 3 and len(queries(emulator)) == 3  # in parallel; no empty page
    # No OFFSET: keyset pages only.
    assert "offset" not in json.dumps(emulator.read_requests()).lower()


def test_a_throttled_query_waits_and_is_retried(credentials, emulator) -> None:
    # Four readers, three slots: the fourth waits (0.2 s here, 30 s on PostHog), gets 429
    # `throttled` without Retry-After, and the client retries it with backoff. Queries run
    # 2 s, so all four are in flight together however slowly the readers start.
    emulator.configure(query_seconds=2.0, query_queue_seconds=0.2)
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": f"c{i:02d}"}
                              for i in range(40)]})
    parts = [KeyRange(0, None if i == 0 else f"c{i * 10 - 1:02d}", "c00" if i == 0 else None,
                      f"c{i * 10 + 9:02d}", 10) for i in range(4)]
    with credentials.get_client() as posthog:
        extra: list[str] = []
        reader = threading.Thread(target=lambda: extra.extend(
            k for page in read_pages(posthog, parts[3:], QueryBudget()) for k, _ in page.rows))
        reader.start()
        keys = [k for page in read_pages(posthog, parts[:3], QueryBudget()) for k, _ in page.rows]
        reader.join()
    assert sorted(keys + extra) == [f"c{i:02d}" for i in range(40)]
    statuses = [r["status"] for r in queries(emulator)]
    assert statuses.count(200) == 4 and 429 in statuses  # throttled, then served
    assert emulator.admin("GET", "queries")["peak"] <= 3


def test_verification_stops_before_going_over_the_hogql_budget(credentials, emulator) -> None:
    with BulkStore.temporary() as store:
        store.add(1, GroupPropertyUpdate(group_type_index=0, group_key="c1", set={"a": 1}))
        store.close_input()
        store.plan([("capture", json.dumps({"a": 1}), None, 1, None, 0, "c1")])

        @flow
        def verify() -> Verification:
            return verify_captured(credentials, quote(store), 5.0, quote(QueryBudget(limit=0)))

        result = verify()
    assert result.stopped == OVER_BUDGET and result.seen == 0
    assert queries(emulator) == []


def test_20000_rows_from_parquet_applied_verified_and_reported(credentials, emulator,
                                                               tmp_path) -> None:
    n = 20_000
    emulator.configure(ingestion_lag=1.0)
    emulator.seed({"generate_groups": {"group_type_index": 0, "count": n,
                                       "key_format": "company-{i:06d}",
                                       "group_properties": {"plan": "free", "seats": 1}}})
    path = tmp_path / "companies.parquet"
    keys = [f"company-{i:06d}" for i in range(n)]
    pq.write_table(pa.table({
        "group_type_index": pa.array([0] * n, pa.int8()), "group_key": keys,
        "plan": ["pro" if i % 2 else "team" for i in range(n)],
        "seats": pa.array([None if i % 2 else i % 500 + 2 for i in range(n)], pa.int32()),
    }), path, row_group_size=4096)
    # PostHog Cloud's budget: 30,000 writes would take hours, so auto takes capture.
    cloud = credentials.model_copy(update={"rate_limit": "480/min,4800/h"})
    report = bulk_update_group_properties(cloud, source_path=str(path), max_report_items=50,
                                          report_path=str(tmp_path / "outcomes.jsonl"))
    assert (report.write_path, report.applied, report.failed, report.events) == (
        "capture", n, 0, n)
    assert report.writes == 0 and report.reads == 1 + len(queries(emulator))
    assert len(report.items) == 50 and report.items_truncated
    assert {o.write_path for o in report.items} == {"capture"}
    assert set(report.timings) >= {"input", "planning", "sending", "verification"}
    outcomes = [json.loads(line) for line in (tmp_path / "outcomes.jsonl").open()]
    assert sorted(o["row"] for o in outcomes) == list(range(1, n + 1))
    assert {o["status"] for o in outcomes} == {"applied"}
    state = groups(emulator)
    assert all(state[k] == ({"plan": "pro", "seats": 1} if i % 2 else
                            {"plan": "team", "seats": i % 500 + 2})
               for i, k in enumerate(keys))
