"""The bulk flow fed as pipelines hold their data: real pandas, polars and pyarrow objects,
Parquet files, and URLs on a real S3 API on loopback (moto's server, through s3fs); and
every bad input in those formats refused before any write, naming the place."""

from __future__ import annotations

import asyncio
import io
import json
import sys

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.sorting import FlowRunSort

from prefect_posthog.client import InvalidInputError
from prefect_posthog.flows import JobFailedError, bulk_update_group_properties


def groups(emulator) -> dict[str, dict]:
    return {json.loads(k)[2]: g["group_properties"]
            for k, g in emulator.read_state()["groups"].items()}


def no_writes(emulator) -> bool:
    return not [r for r in emulator.read_requests() if r["method"] != "GET"] and not (
        emulator.admin("GET", "ingestion")["events"])


@pytest.fixture
def companies(emulator):
    emulator.configure(ingestion_lag=0.2)
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": f"c{i}",
                               "group_properties": {"plan": "free", "seats": i, "trial": True}}
                              for i in range(4)]})


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=2)
    return sink.getvalue()


# The same four rows in each library: nulls are "no change"; `$unset` removes.
ROWS = {"group_type_index": [0, 0, 0, 0], "group_key": ["c0", "c1", "c2", "c3"],
        "plan": ["pro", None, "team", None], "seats": [10, 1, None, None],
        "$unset": ["trial", None, "", None]}
EXPECTED = {"c0": {"plan": "pro", "seats": 10}, "c1": {"plan": "free", "seats": 1,
                                                        "trial": True},
            "c2": {"plan": "team", "seats": 2, "trial": True},
            "c3": {"plan": "free", "seats": 3, "trial": True}}


@pytest.mark.parametrize("make", [
    lambda: pd.DataFrame(ROWS).astype({"seats": "Int64"}),
    lambda: pl.DataFrame(ROWS),
    lambda: pa.table(ROWS),
], ids=["pandas", "polars", "pyarrow"])
def test_dataframes_and_arrow_tables_are_read_with_the_csv_convention(credentials, emulator,
                                                                     companies, make) -> None:
    report = bulk_update_group_properties(credentials, updates=make())
    assert (report.applied, report.unchanged, report.failed) == (2, 2, 0)
    assert groups(emulator) == EXPECTED


@pytest.mark.parametrize(("make", "kind"), [
    (lambda: pl.DataFrame(ROWS), "polars.DataFrame"),
    (lambda: pd.DataFrame(ROWS).astype({"seats": "Int64"}), "pandas.DataFrame"),
], ids=["polars", "pandas"])
def test_a_pipeline_passes_a_dataframe_to_the_bulk_flow_as_a_subflow(
        credentials, emulator, companies, make, kind) -> None:
    @flow
    def pipeline() -> int:
        frame = make()
        return bulk_update_group_properties(credentials, updates=frame).applied

    assert pipeline() == 2 and groups(emulator) == EXPECTED

    async def stored_parameters() -> dict:
        async with get_client() as client:
            [run] = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[
                    bulk_update_group_properties.name])),
                sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=1)
        return run.parameters

    # The run stores a short description, never the frame's rows.
    assert asyncio.run(stored_parameters())["updates"].startswith(f"<{kind} of 4 rows")


def test_set_null_is_written_through_capture_and_refused_by_the_api(credentials, emulator,
                                                                   companies, tmp_path) -> None:
    frame = pd.DataFrame({"group_type_index": [0, 0], "group_key": ["c0", "c1"],
                          "plan": ["pro", None], "$set_null": ["seats", "seats;plan"]})
    outcomes = tmp_path / "outcomes.jsonl"
    with pytest.raises(JobFailedError, match="2 of 2 items failed"):
        bulk_update_group_properties(credentials, updates=frame, write_path="api",
                                     report_path=str(outcomes))
    refused = [json.loads(line) for line in outcomes.open()]
    assert {o["status"] for o in refused} == {"failed"} and no_writes(emulator)
    assert "cannot store a null" in refused[0]["reason"]
    # auto: a null can only be stored through ingestion, so capture is chosen.
    report = bulk_update_group_properties(credentials, updates=frame, verify_timeout_seconds=30)
    assert (report.write_path, report.applied, report.events) == ("capture", 2, 2)
    state = groups(emulator)
    assert state["c0"] == {"plan": "pro", "seats": None, "trial": True}
    assert state["c1"] == {"plan": None, "seats": None, "trial": True}
    assert bulk_update_group_properties(credentials, updates=frame).unchanged == 2


def test_parquet_and_jsonl_from_s3_and_csv_from_a_file_url(credentials, emulator, companies,
                                                           s3, tmp_path) -> None:
    url = s3.put("pipeline/groups.parquet", parquet_bytes(pa.table(ROWS)))
    report = bulk_update_group_properties(credentials, source_path=url)
    assert (report.applied, report.unchanged) == (2, 2) and groups(emulator) == EXPECTED
    lines = [{"group_type_index": 0, "group_key": "c3", "set": {"plan": "s3"}}]
    url = s3.put("pipeline/more.jsonl", "\n".join(map(json.dumps, lines)).encode())
    assert bulk_update_group_properties(credentials, source_path=url).applied == 1
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("group_type_index,group_key,plan,$set_null\n0,c2,local,seats\n")
    report = bulk_update_group_properties(credentials, source_path=csv_path.as_uri(),
                                          verify_timeout_seconds=30)
    assert report.applied == 1 and groups(emulator)["c2"]["seats"] is None


def nested() -> pa.Table:
    return pa.table({"group_type_index": [0], "group_key": ["c0"],
                     "address": [{"city": "Paris"}]})


@pytest.mark.parametrize(("updates", "field", "text"), [
    (pa.table({"group_type_index": [0], "plan": ["pro"]}), "updates", "no 'group_key' column"),
    (pd.DataFrame({"group_type_index": [0.0, None], "group_key": ["c0", "c1"]}), "updates",
     "column 'group_type_index' has type double"),
    (nested(), "updates", "column 'address' has type struct"),
    (pl.DataFrame({"group_type_index": [0, 0], "group_key": ["c0", "c1"],
                   "score": [1.0, float("nan")]}), "row 2", "set.score holds NaN"),
    (pl.DataFrame({"group_type_index": [0, 7], "group_key": ["c0", "c1"]}),
     "row 2: group_type_index", "less than or equal to 4"),
    (pa.table({"group_type_index": [0, 0], "group_key": ["c0", None]}), "row 2: group_key",
     "is empty"),
    # A key that is falsy once stringified gives no group in PostHog's ingestion
    # (`groups.ts` extractGroupIdentify): refused, naming the row.
    (pl.DataFrame({"group_type_index": [0, 0], "group_key": ["c0", ""]}), "row 2: group_key",
     "at least 1 character"),
    (pd.DataFrame({"group_type_index": [0, 0], "group_key": ["c0", "  "]}), "row 2",
     "group_key is blank"),
])
def test_bad_frames_are_refused_before_any_write(credentials, emulator, companies, updates,
                                                 field, text) -> None:
    with pytest.raises(InvalidInputError, match=text) as info:
        bulk_update_group_properties(credentials, updates=updates)
    assert info.value.field == field and no_writes(emulator)


def test_bad_files_and_urls_are_refused_before_any_write(credentials, emulator, companies, s3,
                                                         tmp_path) -> None:
    cases = [
        (s3.put("pipeline/nokey.parquet", parquet_bytes(pa.table(
            {"group_type_index": [0], "plan": ["x"]}))), "nokey.parquet has no 'group_key'"),
        (s3.put("pipeline/nested.parquet", parquet_bytes(nested())),
         "column 'address' has type struct"),
        (s3.put("pipeline/fake.parquet", b"not parquet"), "not a readable Parquet file"),
        ("s3://no-such-bucket/groups.parquet", "does not exist"),
        ("s3://pipeline/missing.jsonl", "does not exist"),
        ("ftps2://host/x.csv", "not a file system fsspec knows"),
    ]
    for url, text in cases:
        with pytest.raises(InvalidInputError, match=text) as info:
            bulk_update_group_properties(credentials, source_path=url)
        assert info.value.field == "source_path", url
    assert no_writes(emulator)


def test_a_missing_extra_is_named_before_anything_is_read(credentials, emulator, companies,
                                                          monkeypatch, tmp_path) -> None:
    path = tmp_path / "groups.parquet"
    pq.write_table(pa.table(ROWS), path)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
    for kwargs in ({"source_path": str(path)}, {"updates": pl.DataFrame(ROWS)}):
        with pytest.raises(InvalidInputError, match=r"pip install 'prefect-posthog\[parquet\]'"):
            bulk_update_group_properties(credentials, **kwargs)
    monkeypatch.undo()
    # gcsfs and adlfs are not installed here: their URLs name the extra to install.
    for url, extra in (("gs://bucket/groups.csv", "gcs"), ("az://box/groups.csv", "azure")):
        with pytest.raises(InvalidInputError, match=rf"prefect-posthog\[{extra}\]"):
            bulk_update_group_properties(credentials, source_path=url)
    assert no_writes(emulator)
