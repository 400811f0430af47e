"""Whole-input validation means whole: every bad input is refused before any write with a
typed error naming the row and the field, and a planning phase that gives up still leaves
every item an outcome and the report written."""

from __future__ import annotations

import json

import pytest
from prefect.exceptions import ParameterTypeError
from prefect.settings import PREFECT_SERVER_API_MAX_PARAMETER_SIZE, temporary_settings
from pydantic import SecretStr
from pydantic import ValidationError as PydanticValidationError

from prefect_posthog import PostHogCredentials
from prefect_posthog.client import InvalidInputError, PostHogClient
from prefect_posthog.flows import GroupPropertyUpdate, bulk_update_group_properties
from prefect_posthog.tasks import update_project_secret_api_key
from tests.helpers import last_artifact_rows


@pytest.fixture
def acme(emulator):
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": k,
                               "group_properties": {"plan": "free"}} for k in ("acme", "beta")]})


def no_writes(emulator) -> bool:
    return not [r for r in emulator.read_requests() if r["method"] != "GET"]


@pytest.mark.parametrize(("rows", "field"), [
    ([{"group_type_index": 0, "group_key": "acme", "set": {"plan": "pro"}},
      {"group_type_index": 0, "group_key": "beta", "set": {"score": float("nan")}}], "row 2"),
    ([{"group_type_index": 0, "group_key": "acme", "set": {"plan": "pro"}},
      {"group_type_index": 0, "group_key": "beta", "set": {"x": {"y": [float("inf")]}}}],
     "row 2"),
    ([{"group_type_index": 0, "group_key": "   ", "set": {"plan": "pro"}}], "row 1"),
    ([{"group_type_index": 0, "group_key": "acme", "set": {"plan": "pro"}},
      {"group_type_index": 0, "group_key": "acme", "set": {"plan": "team"}}], "row 2: set.plan"),
    ([{"group_type_index": 0, "group_key": "acme", "set": {"plan": "pro"}},
      {"group_type_index": 0, "group_key": "acme", "unset": ["plan"]}], "row 2: unset.plan"),
])
def test_bad_rows_are_refused_before_any_write(credentials, emulator, acme, rows,
                                               field) -> None:
    # Row-level errors are caught by Prefect's own parameter validation (naming
    # ``updates.<0-based index>``) or, for what only the whole input shows, by the flow.
    with pytest.raises((InvalidInputError, ParameterTypeError)) as info:
        bulk_update_group_properties(credentials, updates=rows)
    if isinstance(info.value, InvalidInputError):
        assert info.value.field.startswith(field), str(info.value)
    else:
        index = int(field.split()[1].rstrip(":")) - 1
        assert f"updates.{index}:" in str(info.value), str(info.value)
    assert no_writes(emulator)


def test_bad_rows_from_a_file_name_the_row(credentials, emulator, acme, tmp_path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"group_type_index": 0, "group_key": "acme", "set": {"plan": "pro"}}\n'
                    '{"group_type_index": 0, "group_key": "beta", "set": {"score": NaN}}\n')
    with pytest.raises(InvalidInputError, match="NaN") as info:
        bulk_update_group_properties(credentials, source_path=str(path))
    assert info.value.field == "row 2"
    assert no_writes(emulator)


def test_agreeing_duplicate_rows_are_applied_once_and_rerun_writes_nothing(
        credentials, emulator, acme) -> None:
    rows = [{"group_type_index": 0, "group_key": "acme", "set": {"plan": "pro"}},
            {"group_type_index": 0, "group_key": "acme", "set": {"plan": "pro", "seats": 3}}]
    first = bulk_update_group_properties(credentials, updates=rows)
    assert first.writes == 2 and first.failed == 0
    again = bulk_update_group_properties(credentials, updates=rows)
    assert again.writes == 0 and again.unchanged == 2


@pytest.mark.parametrize(("name", "content", "field", "text"), [
    ("dup.csv", "group_type_index,group_key,plan,plan\n0,acme,pro,team\n", "source_path",
     "'plan' appears more than once"),
    ("short.csv", "group_type_index,group_key,plan\n0,acme,pro\n0,beta\n", "row 2",
     "2 cells"),
    ("nokey.csv", "group_type_index,plan\n0,pro\n", "source_path", "no 'group_key'"),
    ("bad.jsonl", '{"group_type_index": 0, "group_key": "acme"}\n\n{"group_type_index": 0,\n',
     "row 2", "file line 3"),
    ("bad.json", '[{"group_type_index": 0,\n "group_key": "acme"},\n oops]', "source_path",
     "line 3"),
])
def test_bad_files_name_row_and_field(credentials, emulator, acme, tmp_path, name, content,
                                      field, text) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InvalidInputError, match=text) as info:
        bulk_update_group_properties(credentials, source_path=str(path))
    assert info.value.field == field
    assert no_writes(emulator)


def test_undecodable_file_names_the_line(credentials, emulator, acme, tmp_path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("group_type_index,group_key,city\n0,acme,Paris\n0,beta,Köln\n"
                     .encode("latin-1"))
    with pytest.raises(InvalidInputError, match="line 3 is not UTF-8"):
        bulk_update_group_properties(credentials, source_path=str(path))
    assert no_writes(emulator)


def test_a_spreadsheet_csv_with_a_byte_order_mark_is_read(credentials, emulator, acme,
                                                          tmp_path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffgroup_type_index,group_key,plan\n0,acme,pro\n".encode())
    report = bulk_update_group_properties(credentials, source_path=str(path))
    assert report.applied == 1


@pytest.mark.parametrize("key", ["phx_abc def", "phx_ab\ncd", "phx_ключ", "phx_\u00a0x"])
def test_personal_keys_that_cannot_be_valid_are_refused_without_echo(key) -> None:
    with pytest.raises(PydanticValidationError) as info:
        PostHogCredentials(host="https://eu.posthog.com", personal_api_key=key, project_id=1)
    assert "personal_api_key" in str(info.value) and key not in str(info.value)
    with pytest.raises(InvalidInputError) as direct:
        PostHogClient("https://eu.posthog.com", key, 1)
    assert direct.value.field == "personal_api_key" and key not in str(direct.value)
    # Surrounding whitespace from a copy-paste is trimmed, not refused.
    block = PostHogCredentials(host="https://eu.posthog.com", personal_api_key=" phx_ok\n",
                               project_id=1)
    assert block.personal_api_key.get_secret_value() == "phx_ok"


def test_rename_to_a_used_label_is_refused_before_sending(credentials, emulator) -> None:
    seeded = emulator.seed({"project_secret_api_keys": [{"label": "a"}, {"label": "b"}]})
    key_id = seeded["project_secret_api_keys"][0]["id"]
    with pytest.raises(InvalidInputError, match="already has this label") as info:
        update_project_secret_api_key.fn(credentials, key_id, label="b")
    assert info.value.field == "label"
    assert no_writes(emulator)
    assert update_project_secret_api_key.fn(credentials, key_id, label="a").label == "a"


def test_input_larger_than_a_parameter_still_runs(credentials, emulator, acme) -> None:
    rows = [GroupPropertyUpdate(group_type_index=0, group_key="acme",
                                set={f"p{i}": "x" * 50 for i in range(100)})] * 50
    with temporary_settings({PREFECT_SERVER_API_MAX_PARAMETER_SIZE: 20_000}):
        assert len(json.dumps([r.model_dump() for r in rows])) > 20_000
        report = bulk_update_group_properties(credentials, updates=rows)
    assert report.applied == 1 and report.unchanged == 49 and report.writes == 100


def test_planning_that_gives_up_still_reports_every_item(credentials, emulator, acme) -> None:
    emulator.seed({"groups": [{"group_type_index": 1, "group_key": "org-1"}]})
    # Every read of group type 0 fails for longer than the client retries.
    emulator.set_faults(schedule=[{"operation": "list_groups", "fault": "503", "count": 100},
                                  {"operation": "find_group", "fault": "503", "count": 100}])
    rows = [{"group_type_index": 0, "group_key": "acme", "set": {"plan": "pro"}},
            {"group_type_index": 0, "group_key": "beta", "set": {"plan": "pro"}}]
    tough = credentials.model_copy(update={"max_attempts": 2})
    with pytest.raises(RuntimeError, match="2 of 2 items failed"):
        bulk_update_group_properties(tough, updates=rows)
    outcomes = last_artifact_rows("posthog-bulk-update")
    assert [(o["group_key"], o["status"]) for o in outcomes] == [("acme", "failed"),
                                                                ("beta", "failed")]
    assert all("could not read the current state" in o["reason"] for o in outcomes)
    assert no_writes(emulator)


def test_secret_str_key_is_checked_too() -> None:
    with pytest.raises(InvalidInputError):
        PostHogClient("https://eu.posthog.com", SecretStr("phx_a b"), 1)
