"""Ported from ``ee/clickhouse/views/test/test_clickhouse_groups.py``: the groups views."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from prefect_posthog.emulator import Emulator
from tests.helpers import ADMIN_KEY

# -- GroupsViewSetTestCase: list, find, create, update and delete property -----------------

@pytest.fixture
def krabs(emulator: Emulator) -> None:
    emulator.seed({"groups": [
        {"group_type_index": 0, "group_key": "org:5", "created_at": "2021-05-01T00:00:00Z",
         "group_properties": {"industry": "finance", "name": "Mr. Krabs"}},
        {"group_type_index": 0, "group_key": "org:6", "created_at": "2021-05-02T00:00:00Z",
         "group_properties": {"industry": "technology"}},
        {"group_type_index": 1, "group_key": "company:1", "created_at": "2021-05-02T00:00:00Z",
         "group_properties": {"name": "Plankton"}}]})


def test_groups_list(api, krabs) -> None:
    org5 = {"created_at": "2021-05-01T00:00:00Z", "group_key": "org:5",
            "group_properties": {"industry": "finance", "name": "Mr. Krabs"},
            "group_type_index": 0}
    org6 = {"created_at": "2021-05-02T00:00:00Z", "group_key": "org:6",
            "group_properties": {"industry": "technology"}, "group_type_index": 0}
    assert api("GET", "groups?group_type_index=0").json() == {
        "next": None, "previous": None, "results": [org6, org5]}
    for search in ("Krabs", "org:5"):
        assert api("GET", f"groups?group_type_index=0&search={search}").json() == {
            "next": None, "previous": None, "results": [org5]}


def test_groups_list_no_group_type(api) -> None:
    body = api("GET", "groups/").json()
    assert (body["type"], body["attr"], body["code"]) == ("validation_error", "group_type_index",
                                                          "invalid_input")


def test_retrieve_group_wrong_group_type_index_or_key_and_missing_key(api, krabs) -> None:
    # test_retrieve_group_wrong_group_type_index, _wrong_group_key, test_find_missing_group_key
    assert api("GET", "groups/find?group_type_index=1&group_key=org:5").status_code == 404
    assert api("GET", "groups/find?group_type_index=0&group_key=wrong_key").status_code == 404
    assert api("GET", "groups/find?group_type_index=0").status_code == 400


def test_retrieve_group_crm_disabled_and_skip_create_notebook(api, krabs) -> None:
    # test_retrieve_group_crm_disabled, test_find_with_skip_create_notebook_does_not_create_...
    for suffix in ("", "&skip_create_notebook=true"):
        assert api("GET", f"groups/find?group_type_index=0&group_key=org:5{suffix}").json() == {
            "created_at": "2021-05-01T00:00:00Z", "group_key": "org:5",
            "group_properties": {"industry": "finance", "name": "Mr. Krabs"},
            "group_type_index": 0, "notebook": None}


def test_create_group_and_its_activity(api) -> None:
    # test_create_group_missing_group_properties, test_create_group
    empty = api("POST", "groups", json={"group_key": "1234", "group_type_index": 0,
                                         "group_properties": None})
    assert empty.status_code == 201 and empty.json()["group_properties"] == {}
    props = {"name": "Group Name", "industry": "finance"}
    created = api("POST", "groups", json={"group_key": "5678", "group_type_index": 0,
                                           "group_properties": props})
    assert created.status_code == 201
    assert {k: v for k, v in created.json().items() if k != "created_at"} == {
        "group_key": "5678", "group_properties": props, "group_type_index": 0}
    results = api("GET", "groups/activity?group_key=5678&group_type_index=0").json()["results"]
    assert len(results) == 2
    for entry in results:
        assert (entry["activity"], entry["scope"]) == ("create_group", "Group")
        change = entry["detail"]["changes"][0]
        assert change["action"] == "created" and change["before"] is None
        assert change["after"] == props[entry["detail"]["name"]]


def test_create_group_duplicated_group_key(api, krabs) -> None:
    response = api("POST", "groups", json={"group_key": "org:5", "group_type_index": 0,
                                            "group_properties": {}})
    assert (response.status_code, response.json()) == (400, {
        "type": "validation_error", "code": "invalid_input",
        "detail": "A group with this key already exists", "attr": "detail"})


@pytest.mark.parametrize("field", ["group_key", "group_type_index"])
def test_create_group_missing_group_key_or_type_index(api, field) -> None:
    body = {"group_key": "foo", "group_type_index": 0, "group_properties": {}, field: None}
    response = api("POST", "groups", json=body)
    assert (response.status_code, response.json()) == (400, {
        "attr": field, "code": "null", "detail": "This field may not be null.",
        "type": "validation_error"})


@pytest.mark.parametrize(("before", "activity", "action"), [
    ({"name": "Mr. Krabs"}, "create_property", "created"),
    ({"industry": "finance", "name": "Mr. Krabs"}, "update_property", "changed")])
def test_group_property_crud_add_and_update_success(api, emulator, before, activity,
                                                    action) -> None:
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": "org:5",
                               "created_at": "2021-05-02T00:00:00Z",
                               "group_properties": before}]})
    response = api("POST", "groups/update_property?group_key=org:5&group_type_index=0",
                   json={"key": "industry", "value": "technology"})
    assert (response.status_code, response.json()) == (200, {
        "created_at": "2021-05-02T00:00:00Z", "group_key": "org:5",
        "group_properties": {"industry": "technology", "name": "Mr. Krabs"},
        "group_type_index": 0})
    [entry] = api("GET", "groups/activity?group_key=org:5&group_type_index=0").json()["results"]
    change = entry["detail"]["changes"][0]
    assert (entry["activity"], entry["scope"], change["type"], change["action"]) == (
        activity, "Group", "Group", action)
    assert (change["before"], change["after"]) == (before.get("industry"), "technology")
    assert entry["item_id"].isdigit()


def test_group_property_crud_update_missing_key_and_invalid_group_key(api, krabs) -> None:
    assert api("POST", "groups/update_property?group_key=org:5&group_type_index=0",
               json={"value": "technology"}).status_code == 400
    assert api("POST", "groups/update_property?group_key=org:0&group_type_index=0",
               json={"key": "industry", "value": "technology"}).status_code == 404


def test_group_property_crud_delete_success(api, krabs) -> None:
    response = api("POST", "groups/delete_property?group_key=org:5&group_type_index=0",
                   json={"$unset": "industry"})
    assert response.status_code == 200
    assert response.json()["group_properties"] == {"name": "Mr. Krabs"}


# -- ee/clickhouse/views/test/test_clickhouse_groups.py (points listed in issue #13) ---------

@pytest.mark.parametrize("path", ["groups/find", "groups/update_property",
                                  "groups/delete_property", "groups/activity",
                                  "groups/property_values"])
def test_missing_group_query_parameters_are_invalid_input(api, emulator, path) -> None:
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": "acme"}]})
    method = "POST" if "property" in path and "values" not in path else "GET"
    missing_index = api(method, f"{path}?group_key=acme&key=plan", json={})
    body = missing_index.json()
    assert (missing_index.status_code, body["code"], body["attr"]) == (
        400, "invalid_input", "group_type_index")
    if path != "groups/property_values":
        missing_key = api(method, f"{path}?group_type_index=0", json={}).json()
        assert (missing_key["code"], missing_key["attr"]) == ("invalid_input", "group_key")


def test_timestamps_have_no_fraction_when_microseconds_are_zero(api, emulator) -> None:
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": "whole",
                               "created_at": "2021-05-02T00:00:00Z"},
                              {"group_type_index": 0, "group_key": "frac",
                               "created_at": "2021-05-02T00:00:00.123456Z"}]})
    times = {g["group_key"]: g["created_at"]
             for g in api("GET", "groups/?group_type_index=0").json()["results"]}
    assert times == {"whole": "2021-05-02T00:00:00Z", "frac": "2021-05-02T00:00:00.123456Z"}


# -- GroupsViewSetTestCase, the rest of the class ---------------------------------------------

def test_group_property_crud_delete_success_activity_and_hogql(api, krabs) -> None:
    api("POST", "groups/delete_property?group_key=org:5&group_type_index=0",
        json={"$unset": "industry"})
    hogql = api("POST", "query/", json={"query": {
        "kind": "HogQLQuery", "values": {"idx": 0, "keys": ["org:5"]},
        "query": "select key, properties from groups where index = {idx} and key in {keys} "
                 "order by key limit 10"}}).json()
    assert hogql["results"] == [["org:5", '{"name": "Mr. Krabs"}']]
    [entry] = api("GET", "groups/activity?group_key=org:5&group_type_index=0").json()["results"]
    change = entry["detail"]["changes"][0]
    assert (entry["activity"], entry["scope"], change["type"], change["action"]) == (
        "update_property", "Group", "Group", "deleted")
    assert (change["before"], change["after"]) == ("finance", None)


@pytest.mark.parametrize(("query", "body", "status"), [
    # test_group_property_crud_delete_missing_key, _delete_invalid_group_key,
    # test_delete_property_missing_group_type_index, _missing_group_key,
    # test_delete_property_nonexistent_property, test_delete_property_non_string_unset
    ("group_key=org:5&group_type_index=0", {}, 400),
    ("group_key=org:0&group_type_index=0", {"$unset": "industry"}, 404),
    ("group_key=org:5", {"$unset": "industry"}, 400),
    ("group_type_index=0", {"$unset": "industry"}, 400),
    ("group_key=org:5&group_type_index=0", {"$unset": "nonexistent"}, 400),
    ("group_key=org:5&group_type_index=0", {"$unset": ["industry"]}, 400)])
def test_delete_property_refusals(api, krabs, query, body, status) -> None:
    response = api("POST", f"groups/delete_property?{query}", json=body)
    assert response.status_code == status
    assert api("GET", "groups/find?group_type_index=0&group_key=org:5").json()[
        "group_properties"] == {"industry": "finance", "name": "Mr. Krabs"}


def test_get_group_activities_success_and_invalid_group(api, krabs) -> None:
    assert api("POST", "groups/update_property?group_key=org:5&group_type_index=0",
               json={"key": "industry", "value": "technology"}).status_code == 200
    body = api("GET", "groups/activity?group_key=org:5&group_type_index=0").json()
    [entry] = body["results"]
    assert (entry["activity"], entry["scope"], entry["detail"]["changes"][0]["type"],
            entry["detail"]["changes"][0]["action"]) == (
        "update_property", "Group", "Group", "changed")
    assert api("GET", "groups/activity?group_key=org:5&group_type_index=1").status_code == 404


PERSON_UUID = "01795392-cc00-0003-7dc7-67a694604d72"


@pytest.fixture
def related(emulator: Emulator) -> None:
    """_create_related_groups_data: the actors that share events in the last 90 days. The
    emulator is seeded with the result of that event scan (it keeps no events)."""
    created = "2021-05-10T00:00:00Z"
    emulator.seed({
        "persons": [{"uuid": PERSON_UUID, "distinct_ids": ["1", "2"], "created_at": created}],
        "groups": [{"group_type_index": gti, "group_key": key, "created_at": created}
                   for gti, key in [(0, "0::0"), (0, "0::1"), (1, "1::2"), (1, "1::3"),
                                    (1, "1::4"), (1, "1::5")]],
        "related": [
            {"from": {"group_type_index": 0, "group_key": "0::0"},
             "to": [{"group_type_index": 1, "group_key": "1::3"}, {"person": PERSON_UUID},
                    {"group_type_index": 1, "group_key": "1::2"},
                    {"group_type_index": 1, "group_key": "no such group"}]},
            {"from": {"person": PERSON_UUID},
             "to": [{"group_type_index": gti, "group_key": key}
                    for gti, key in [(1, "1::3"), (0, "0::0"), (1, "1::2"), (0, "0::1")]]}]})


def _group_actor(gti: int, key: str) -> dict:
    return {"created_at": "2021-05-10T00:00:00Z", "group_key": key, "group_type_index": gti,
            "id": key, "properties": {}, "type": "group", "matched_recordings": [],
            "value_at_data_point": None}


def test_related_groups(api, related) -> None:
    assert api("GET", "groups/related?id=0::0&group_type_index=0").json() == [
        {"created_at": "2021-05-10T00:00:00Z", "last_seen_at": None, "distinct_ids": ["1", "2"],
         "id": PERSON_UUID, "uuid": PERSON_UUID, "is_identified": False, "name": "1",
         "properties": {}, "type": "person", "matched_recordings": [],
         "value_at_data_point": None},
        _group_actor(1, "1::2"), _group_actor(1, "1::3")]


def test_related_groups_person_and_missing_id(api, related) -> None:
    assert api("GET", f"groups/related?id={PERSON_UUID}").json() == [
        _group_actor(0, "0::0"), _group_actor(0, "0::1"), _group_actor(1, "1::2"),
        _group_actor(1, "1::3")]
    assert api("GET", "groups/related?group_type_index=0").status_code == 400


def _values(api, query: str) -> list[dict]:
    return api("GET", f"groups/property_values/?{query}").json()["results"]


def test_property_values_and_empty_and_missing_parameters(api, emulator) -> None:
    # test_property_values, test_empty_property_values,
    # test_property_values_missing_group_type_index, test_property_values_missing_key
    emulator.seed({"groups": [
        {"group_type_index": 0, "group_key": "org:5", "group_properties": {"industry": "finance"}},
        {"group_type_index": 0, "group_key": "org:6",
         "group_properties": {"industry": "technology"}},
        {"group_type_index": 0, "group_key": "org:7",
         "group_properties": {"industry": "finance-technology"}},
        {"group_type_index": 1, "group_key": "org:1",
         "group_properties": {"industry": "finance"}}]})
    finance, both, tech = ({"name": n, "count": 1} for n in (
        "finance", "finance-technology", "technology"))
    assert _values(api, "key=industry&group_type_index=0") == [finance, both, tech]
    assert _values(api, "key=industry&group_type_index=0&value=fin") == [finance, both]
    assert _values(api, "key=industry&group_type_index=0&value=TECH") == [both, tech]
    assert _values(api, "key=industry&group_type_index=0&value=healthcare") == []
    assert _values(api, "key=industry&group_type_index=0&value=technology") == [both, tech]
    assert _values(api, "key=industry&group_type_index=1&value=fin") == [finance]
    assert _values(api, "key=name&group_type_index=0") == []
    assert api("GET", "groups/property_values/?key=name").status_code == 400
    assert api("GET", "groups/property_values/?group_type_index=0").status_code == 400


# -- GroupPropertyDefinitionsTestCase: what HTTP shows (the definitions are ORM rows) ----------

def test_property_definitions_writes_answer_and_refuse_bad_keys(api, emulator) -> None:
    # test_create_group_creates_property_definitions,
    # test_property_definitions_have_correct_group_type_index,
    # test_update_property_missing_key, test_update_property_empty_key
    props = {"name": "Test Company", "employees": 100, "is_active": True, "revenue": 50000.50}
    created = api("POST", "groups/", json={"group_type_index": 0, "group_key": "test_company",
                                           "group_properties": props})
    assert created.status_code == 201 and created.json()["group_properties"] == props
    assert api("POST", "groups/", json={"group_type_index": 1, "group_key": "test_key",
                                         "group_properties": {"test_prop": "value"}}
               ).status_code == 201
    path = "groups/update_property?group_key=test_company&group_type_index=0"
    for value in ("test", 42, 3.14, True, "true", "false"):  # test_update_property_with_...
        assert api("POST", path, json={"key": "prop", "value": value}).json()[
            "group_properties"]["prop"] == value
    assert api("POST", path, json={"value": "something"}).status_code == 400
    assert api("POST", path, json={"key": "", "value": "something"}).status_code == 400


# -- TestListGroupsFunction and TestGroupsListAPIContract, through the list endpoint -----------

def _seed(emulator: Emulator, *groups: tuple, project: int = 1) -> None:
    emulator.seed({"groups": [
        {"project": project, "group_type_index": g[0], "group_key": g[1],
         "group_properties": g[2] if len(g) > 2 else {},
         "created_at": g[3] if len(g) > 3 else "2021-05-01T00:00:00Z"} for g in groups]})


def _keys(api, query: str = "") -> list[str]:
    return [g["group_key"] for g in api("GET", f"groups?group_type_index=0{query}").json()[
        "results"]]


def test_returns_groups_ordered_by_created_at_desc_with_key_tiebreak(api, emulator) -> None:
    # test_returns_groups_ordered_by_created_at_desc, test_cursor_pagination_via_api,
    # test_pagination_cursor_breaks_created_at_ties_on_group_key, test_filters_by_group_type_index
    _seed(emulator, (0, "org:0", {}, "2021-05-01T00:00:00Z"),
          (0, "org:1", {}, "2021-05-02T00:00:00Z"), (0, "org:2", {}, "2021-05-03T00:00:00Z"),
          (0, "tie:a"), (0, "tie:c"), (0, "tie:b"), (1, "company:1"))
    page = api("GET", "groups?group_type_index=0").json()
    assert page["next"] is None and page["previous"] is None
    assert [g["group_key"] for g in page["results"]] == [
        "org:2", "org:1", "tie:c", "tie:b", "tie:a", "org:0"]


def test_search_filters_and_case(api, emulator) -> None:
    # test_search_escapes_like_wildcards, test_search_filters_by_properties,
    # test_search_matches_group_key_exact, test_group_key_contains_filter,
    # test_search_is_case_insensitive, test_search_no_match_returns_empty
    _seed(emulator, (0, "org:1", {"name": "50% off"}), (0, "org:2", {"name": "discount"}),
          (0, "org:alpha", {"name": "Acme Corp"}), (0, "org:beta", {"name": "Beta Inc"}))
    assert _keys(api, "&search=50%25") == ["org:1"]
    assert _keys(api, "&search=%25") == ["org:1"]
    assert _keys(api, "&search=acme") == ["org:alpha"]
    assert _keys(api, "&search=ORG:ALPHA") == ["org:alpha"]
    assert _keys(api, "&search=org:al") == []  # key matches exactly, properties by substring
    assert _keys(api, "&group_key=alpha") == ["org:alpha"]
    empty = api("GET", "groups?group_type_index=0&search=zzz-no-such-thing").json()
    assert (empty["results"], empty["next"]) == ([], None)


def test_scopes_results_to_team_latest_and_complex_properties(api, emulator) -> None:
    # test_scopes_results_to_team, test_returns_latest_properties_after_update,
    # test_preserves_complex_property_values, test_empty_result, test_response_format_...
    assert api("GET", "groups?group_type_index=0").json() == {
        "next": None, "previous": None, "results": []}
    emulator.seed({"projects": [{"id": 3}]})
    props = {"count": 5, "active": True, "ratio": 1.5, "tags": ["a", "b"], "nested": {"x": 1},
             "missing": None}
    _seed(emulator, (0, "org:1", {"name": "Old"}), (0, "org:2", props))
    _seed(emulator, (0, "org:1", {"name": "OTHER TEAM"}), project=3)
    api("POST", "groups/update_property?group_key=org:1&group_type_index=0",
        json={"key": "name", "value": "New"})
    results = {g["group_key"]: g for g in api("GET", "groups?group_type_index=0").json()[
        "results"]}
    assert set(results) == {"org:1", "org:2"}
    assert results["org:1"]["group_properties"] == {"name": "New"}
    assert results["org:2"]["group_properties"] == props
    assert {"group_key", "group_type_index", "group_properties", "created_at"} == set(
        results["org:1"])


def test_has_more_and_cursor_pages(api, emulator) -> None:
    # test_has_more_false_when_result_count_equals_limit, test_pagination_with_limit,
    # test_pagination_cursor_returns_next_page, test_list_api_has_more_produces_next_url
    _seed(emulator, *[(0, f"org:{i:03d}", {}, f"2021-05-01T00:{i // 60:02d}:{i % 60:02d}Z")
                      for i in range(100)])
    assert api("GET", "groups?group_type_index=0").json()["next"] is None
    _seed(emulator, (0, "org:old", {}, "2021-04-01T00:00:00Z"))
    first = api("GET", "groups?group_type_index=0").json()
    assert len(first["results"]) == 100 and first["results"][-1]["group_key"] == "org:000"
    assert "cursor=" in first["next"] and "group_type_index=0" in first["next"]
    second = httpx.get(first["next"], headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert ([g["group_key"] for g in second["results"]], second["next"]) == (["org:old"], None)


def _cursor(payload: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def test_cursor_backward_compat_old_format_and_invalid(api, emulator) -> None:
    # test_cursor_roundtrip, test_cursor_backward_compat_ms,
    # test_old_format_cursor_is_treated_as_no_cursor, test_invalid_cursor_is_ignored
    _seed(emulator, (0, "org:1", {}, "2021-05-01T00:00:00Z"),
          (0, "org:2", {}, "2021-05-02T00:00:00Z"))
    second_us = 1_619_913_600_000_000  # 2021-05-02T00:00:00Z
    assert _keys(api, "&cursor=" + _cursor({"c": second_us, "k": "org:2"})) == ["org:1"]
    assert _keys(api, "&cursor=" + _cursor({"c": second_us // 1000, "k": "org:2"})) == ["org:1"]
    assert _keys(api, "&cursor=" + _cursor({"c": second_us, "i": 42})) == ["org:2", "org:1"]
    assert _keys(api, "&cursor=invalid_cursor") == ["org:2", "org:1"]


def test_invalid_group_type_index_and_find(api, emulator) -> None:
    # test_invalid_group_type_index_returns_400, test_find_uses_personhog_routed_lookup,
    # test_find_nonexistent_returns_404
    _seed(emulator, (0, "org:1", {"name": "Test"}))
    assert api("GET", "groups?group_type_index=abc").status_code == 400
    found = api("GET", "groups/find?group_type_index=0&group_key=org:1").json()
    assert (found["group_key"], found["group_properties"]) == ("org:1", {"name": "Test"})
    assert api("GET", "groups/find?group_type_index=0&group_key=nonexistent").status_code == 404
