"""Ported from ``posthog/api/test/test_project_secret_api_keys.py`` (current behaviour)."""

from __future__ import annotations

import pytest

from tests.helpers import ADMIN_KEY
from tests.ported.conftest import MEMBER_KEY, OTHER_ORG_KEY, OWNER_KEY, PROJECT_READ_KEY


def keys_path(key_id: str = "") -> str:
    return f"project_secret_api_keys/{key_id + '/' if key_id else ''}"


def create(api, label: str = "test", scopes: list[str] | None = None, **kwargs):
    return api("POST", keys_path(), json={"label": label,
                                          "scopes": scopes or ["endpoint:read"]}, **kwargs)


# -- TestProjectSecretAPIKeysAPI -------------------------------------------------------------

def test_create_project_secret_api_key(api) -> None:
    response = create(api, "Test project key")
    assert response.status_code == 201
    data = response.json()
    assert data["label"] == "Test project key" and data["scopes"] == ["endpoint:read"]
    assert data["value"].startswith("phs_") and data["id"] and data["created_at"]
    # Newest serializer also returns these (the older copy returned only the five above).
    assert data["last_rolled_at"] is None and data["mask_value"] == (
        f"{data['value'][:4]}...{data['value'][-4:]}")


def test_create_too_many_project_api_keys(api) -> None:
    for i in range(50):  # newest cap; the older copy asserted 10 and "at most 10"
        assert create(api, f"key-{i}").status_code == 201
    response = create(api, "key-51")
    assert response.status_code == 400
    assert "50 project secret API keys" in response.json()["detail"]


def test_create_project_api_key_label_required(api) -> None:
    response = api("POST", keys_path(), json={"label": "", "scopes": ["endpoint:read"]})
    assert response.status_code == 400 and "label" in str(response.json()).lower()


def test_create_project_api_key_scopes_required(api) -> None:
    response = api("POST", keys_path(), json={"label": "test"})
    assert response.status_code == 400 and "scopes" in str(response.json()).lower()


@pytest.mark.parametrize(("scopes", "should_succeed"), [
    (["endpoint:read"], True),
    (["endpoint:write"], False),
    (["feature_flag:read"], True),  # newest allow-list; the older copy refused it
    (["feature_flag:write"], False),
    (["endpoint:read", "endpoint:write"], False),
    (["endpoint:read", "feature_flag:read"], True),  # older: refused
    (["*"], False),
    (["invalid"], False),
    (["endpoint:invalid"], False),
    (["insight:read"], False),
    (["dashboard:read"], False),
])
def test_scope_validation(api, scopes, should_succeed) -> None:
    response = create(api, "test", scopes)
    if should_succeed:
        assert response.status_code == 201 and response.json()["scopes"] == scopes
    else:
        assert response.status_code == 400 and "scope" in response.json()["detail"].lower()


def test_wildcard_scope_not_allowed(api) -> None:
    response = create(api, "test", ["*"])
    assert response.status_code == 400 and "Wildcard scope" in response.json()["detail"]


def test_update_project_api_key(api) -> None:
    key = create(api, "test-label").json()
    # The older copy sent a PUT with the label only; newest PUT needs both fields, so the
    # partial update is a PATCH.
    response = api("PATCH", keys_path(key["id"]), json={"label": "updated-test-label"})
    assert response.status_code == 200
    data = response.json()
    assert (data["id"], data["label"], data["scopes"]) == (key["id"], "updated-test-label",
                                                           ["endpoint:read"])
    assert api("PUT", keys_path(key["id"]), json={"label": "x"}).status_code == 400


def test_delete_project_api_key(api) -> None:
    key = create(api, "Test").json()
    assert api("GET", keys_path()).json()["count"] == 1
    assert api("DELETE", keys_path(key["id"])).status_code == 204
    assert api("GET", keys_path()).json()["count"] == 0


def test_list_only_team_project_api_keys(api) -> None:
    mine = create(api, "Test").json()
    assert create(api, "Other test", key=OTHER_ORG_KEY, project=2).status_code == 201
    response = api("GET", keys_path())
    assert response.status_code == 200
    [listed] = response.json()["results"]  # newest: paginated (older: a bare list)
    assert (listed["id"], listed["label"], listed["mask_value"], listed["scopes"]) == (
        mine["id"], "Test", mine["mask_value"], ["endpoint:read"])
    assert listed["created_by"]["id"] == 1 and "created_at" in listed
    assert listed["value"] is None


def test_cannot_access_other_team_api_keys(api) -> None:
    other = create(api, "Other test", key=OTHER_ORG_KEY, project=2).json()
    assert api("GET", keys_path(other["id"])).status_code == 404
    assert api("DELETE", keys_path(other["id"])).status_code == 404


def test_unique_label_per_team(api) -> None:
    create(api, "duplicate-label")
    response = create(api, "duplicate-label")
    assert response.status_code == 400 and "already exists" in response.json()["detail"]


def test_same_label_different_teams(api) -> None:
    create(api, "same-label")
    assert create(api, "same-label", key=OTHER_ORG_KEY, project=2).status_code == 201


def test_roll_key(api, emulator) -> None:
    key = create(api, "same-label").json()
    rolled = api("POST", keys_path(key["id"]) + "roll")
    stored = emulator.read_state()["project_secret_api_keys"][key["id"]]
    assert rolled.json()["mask_value"] == stored["mask_value"] != key["mask_value"]


def test_numeric_label_is_stored_as_text_and_counts_toward_the_cap(api) -> None:
    # PostHog's serializer (posthog/api/project_secret_api_key.py) makes label a DRF
    # CharField (issue #13).
    response = api("POST", keys_path(), json={"label": 7, "scopes": ["endpoint:read"]})
    assert response.status_code == 201 and response.json()["label"] == "7"
    assert api("POST", keys_path(), json={"label": True, "scopes": ["endpoint:read"]}
               ).status_code == 400
    for i in range(49):
        api("POST", keys_path(), json={"label": 100 + i, "scopes": ["endpoint:read"]})
    assert create(api, "one-too-many").status_code == 400


# -- TestProjectSecretAPIKeyWithPersonalAPIKey -------------------------------------------------

def test_can_create_list_and_delete_project_api_keys_with_personal_key(api) -> None:
    # test_can_create_/test_can_list_/test_can_delete_project_api_key_with_personal_key
    created = create(api, "Created via personal key")
    assert created.status_code == 201 and created.json()["label"] == "Created via personal key"
    assert len(api("GET", keys_path()).json()["results"]) == 1
    assert api("DELETE", keys_path(created.json()["id"])).status_code == 204


def test_personal_key_without_project_write_scope_fails(api) -> None:
    assert create(api, "Should fail", key=PROJECT_READ_KEY).status_code == 403
    assert api("GET", keys_path(), key=PROJECT_READ_KEY).status_code == 200


# -- TestProjectSecretAPIKeyAuthentication -----------------------------------------------------

def test_cannot_manage_project_keys_with_project_key(api) -> None:
    # test_cannot_manage_/create_/delete_project_keys_with_project_key
    key = create(api, "Test Project Key").json()
    value = key["value"]
    assert api("GET", keys_path(), key=value).status_code in (401, 403)
    assert create(api, "Should fail", key=value).status_code in (401, 403)
    assert api("DELETE", keys_path(key["id"]), key=value).status_code in (401, 403)


# -- TestProjectSecretAPIKeyErrorMessages ------------------------------------------------------

def test_invalid_scope_error_message(api) -> None:
    assert "Invalid scope" in create(api, "test", ["invalid:scope"]).json()["detail"]


def test_disallowed_scope_error_message(api) -> None:
    detail = create(api, "test", ["insight:read"]).json()["detail"]
    # Newest wording; the older copy said "not available".
    assert "can not be assigned" in detail and "endpoint" in detail


# -- TestProjectSecretAPIKeyPermissions --------------------------------------------------------

def test_member_cannot_create_update_or_delete_project_secret_api_key(api) -> None:
    key = create(api, "Original label").json()
    assert create(api, "Test key", key=MEMBER_KEY).status_code == 403
    assert api("PUT", keys_path(key["id"]), key=MEMBER_KEY,
               json={"label": "Updated label", "scopes": ["endpoint:read"]}).status_code == 403
    assert api("DELETE", keys_path(key["id"]), key=MEMBER_KEY).status_code == 403
    assert api("GET", keys_path()).json()["count"] == 1


def test_member_can_list_and_retrieve_project_secret_api_keys(api) -> None:
    key = create(api, "Test key").json()
    assert len(api("GET", keys_path(), key=MEMBER_KEY).json()["results"]) == 1
    retrieved = api("GET", keys_path(key["id"]), key=MEMBER_KEY)
    assert retrieved.status_code == 200 and retrieved.json()["label"] == "Test key"


@pytest.mark.parametrize("owner_or_admin", [ADMIN_KEY, OWNER_KEY])
def test_admin_and_owner_can_create_update_and_delete_project_secret_api_key(
        api, owner_or_admin) -> None:
    created = create(api, "Test key", key=owner_or_admin)
    assert created.status_code == 201
    updated = api("PUT", keys_path(created.json()["id"]), key=owner_or_admin,
                  json={"label": "Updated label", "scopes": ["endpoint:read"]})
    assert updated.status_code == 200 and updated.json()["label"] == "Updated label"
    assert api("DELETE", keys_path(created.json()["id"]), key=owner_or_admin).status_code == 204

