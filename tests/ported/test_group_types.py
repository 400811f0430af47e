"""Ported from ``ee/clickhouse/views/test/test_clickhouse_groups.py``: the group-types views
(``GroupsViewSetTestCase``'s group-type tests and ``GroupsTypesViewSetTestCase``)."""

from __future__ import annotations

import pytest

from prefect_posthog.emulator import Emulator
from tests.ported.conftest import MEMBER_KEY, OTHER_ORG_KEY

TYPES = [(0, "organization"), (1, "playlist"), (2, "another")]


def row(index: int, name: str, **changed) -> dict:
    return {"group_type_index": index, "group_type": name, "name_singular": None,
            "name_plural": None, "detail_dashboard": None, "default_columns": None,
            "created_at": None, **changed}


@pytest.fixture
def types(emulator: Emulator) -> None:
    """create_group_type_mapping_without_created_at, in project 1 and in another org's 2."""
    emulator.seed({"group_types": [{"project": project, "group_type_index": i, "name": name}
                                   for project in (1, 2) for i, name in TYPES]})


def test_list_group_types(api, types) -> None:
    assert api("GET", "groups_types").json() == [row(i, name) for i, name in TYPES]


def test_update_groups_metadata(api, types) -> None:
    # test_update_groups_metadata, test_update_metadata_admin_can_modify_protected_fields
    response = api("PATCH", "groups_types/update_metadata", json=[
        {"group_type_index": 0, "name_singular": "organization!"},
        {"group_type_index": 1, "group_type": "rename attempt", "name_plural": "playlists"}])
    expected = [row(0, "organization", name_singular="organization!"),
                row(1, "playlist", name_plural="playlists"), row(2, "another")]
    assert (response.status_code, response.json()) == (200, expected)
    assert api("GET", "groups_types").json() == expected


def test_update_metadata_refuses_a_bad_row_without_applying_any(api, types) -> None:
    response = api("PATCH", "groups_types/update_metadata", json=[
        {"group_type_index": 0, "name_singular": "Org"},
        {"group_type_index": 4, "name_singular": "Nope"}])
    assert response.status_code == 404
    assert api("GET", "groups_types").json()[0]["name_singular"] is None


def test_cannot_list_group_types_of_another_org(api, types) -> None:
    response = api("GET", "groups_types", project=2)
    assert (response.status_code, response.json()) == (403, {
        "type": "authentication_error", "code": "permission_denied",
        "detail": "You don't have access to the project.", "attr": None})


@pytest.fixture
def shares(emulator: Emulator) -> None:
    emulator.seed({"insights": [{"id": 1}, {"id": 1, "project": 2}], "sharing": [
        {"resource": "insight", "id": 1, "access_token": "own_team_token"},
        {"resource": "insight", "id": 1, "project": 2, "access_token": "other_team_token"}]})


def test_cannot_list_group_types_of_another_org_with_sharing_token(api, types,
                                                                    shares) -> None:
    response = api("GET", "groups_types/?sharing_access_token=own_team_token", key=None,
                   project=2)
    assert (response.status_code, response.json()) == (403, {
        "type": "authentication_error", "code": "permission_denied",
        "detail": "You do not have permission to perform this action.", "attr": None})


def test_can_list_group_types_of_another_org_with_sharing_access_token(api, emulator, types,
                                                                        shares) -> None:
    path = "groups_types/?sharing_access_token=other_team_token"
    assert api("GET", path, key=None, project=2).json() == [row(i, n) for i, n in TYPES]
    # A share's token reads the group types only, not what a personal key could.
    assert api("GET", "groups/?group_type_index=0&sharing_access_token=other_team_token",
               key=None, project=2).status_code == 403
    api("PATCH", "insights/1/sharing", key=OTHER_ORG_KEY, project=2, json={"enabled": False})
    disabled = api("GET", path, key=None, project=2)
    assert (disabled.status_code, disabled.json()) == (403, {
        "type": "authentication_error", "code": "authentication_failed",
        "detail": "Sharing access token is invalid.", "attr": None})


def test_create_detail_dashboard_success_duplicate_and_not_found(api, types) -> None:
    # GroupsViewSetTestCase.test_create_detail_dashboard_success/_duplicate/_not_found,
    # GroupsTypesViewSetTestCase.test_create_detail_dashboard
    created = api("PUT", "groups_types/create_detail_dashboard", json={"group_type_index": 0})
    assert created.status_code == 200
    data = created.json()
    assert (data["group_type"], data["group_type_index"]) == ("organization", 0)
    assert isinstance(data["detail_dashboard"], int)
    assert api("GET", "groups_types").json()[0]["detail_dashboard"] == data["detail_dashboard"]
    assert api("GET", f"dashboards/{data['detail_dashboard']}/sharing").status_code == 200
    again = api("PUT", "groups_types/create_detail_dashboard", json={"group_type_index": 0})
    assert again.status_code == 400
    missing = api("PUT", "groups_types/create_detail_dashboard", json={"group_type_index": 4})
    assert (missing.status_code, missing.json()["detail"]) == (404, "Group type not found")


def test_set_default_columns_success_and_not_found(api, types) -> None:
    response = api("PUT", "groups_types/set_default_columns",
                   json={"group_type_index": 0, "default_columns": ["$group_0", "$group_1"]})
    assert response.status_code == 200
    assert api("GET", "groups_types").json()[0]["default_columns"] == ["$group_0", "$group_1"]
    missing = api("PUT", "groups_types/set_default_columns",
                  json={"group_type_index": 4, "default_columns": ["$group_0"]})
    assert (missing.status_code, missing.json()["detail"]) == (404, "Group type not found")


def test_delete_and_delete_nonexistent(api, emulator) -> None:
    # GroupsTypesViewSetTestCase.test_delete, test_delete_nonexistent
    emulator.seed({"group_types": [{"group_type_index": 0, "name": "organization"}]})
    assert api("DELETE", "groups_types/0").status_code == 204
    remaining = [t["group_type_index"] for t in api("GET", "groups_types").json()]
    assert 0 not in remaining
    assert api("DELETE", "groups_types/99").status_code == 404


def test_group_type_writes_need_group_write_scope(api, emulator, types) -> None:
    emulator.seed({"personal_api_keys": [{"value": "phx_group_read_only",
                                          "scopes": ["group:read"]}]})
    response = api("PATCH", "groups_types/update_metadata", key="phx_group_read_only",
                   json=[{"group_type_index": 0, "name_singular": "Org"}])
    assert response.status_code == 403
    assert api("GET", "groups_types", key=MEMBER_KEY).status_code == 200

