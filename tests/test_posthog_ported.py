"""PostHog's own tests for this slice, as contract tests of the emulator over raw HTTP.

Each test is named after the PostHog test(s) it comes from (class and method in
``PostHog/posthog``), written anew here. Where PostHog's stored versions disagree the
newest is followed and the older behaviour is noted.

Sources read and ported:
- ``posthog/api/test/test_project_secret_api_keys.py``, whole file. The stored copy is an
  older version (10-key cap, ``endpoint:read`` the only allowed scope, bare-list responses,
  partial PUT); SPEC §3 describes the newest (50 keys, ``feature_flag:read`` allowed,
  paginated list, PUT needs label and scopes), which these tests follow.
- ``posthog/api/test/test_sharing.py``, the API-observable tests of its first 72,000 of
  118,165 characters (``TestSharing`` and ``TestSharingConfigurationSerializerValidation``:
  config reads, re-enabling, legacy tokens, refresh and grace, duplicate configs, settings,
  public sharing disallowed). The rest of the file renders shared pages (below).
- The share-password API tests (``TestSharePasswordAPI``), whole class.
- ``ee/clickhouse/views/test/test_clickhouse_groups.py``, its first 32,000 of 110,479
  characters (list, find, create, update and delete property with activity). NOT yet
  ported: the rest of that file (further delete cases, activity paging, related groups,
  property definitions and values, group types).

Not modelled, on purpose (the library never relies on them):
- OpenGraph images and exports (``/shared/<token>.png``, ``ExportedAsset``), the exporter
  and its tokens, ``/shared_dashboard`` and ``/embedded`` rendering, cohort inlining, query
  caches in shared pages: rendering, not API behaviour.
- Activity-log rows of dashboards and insights (asserted through the ORM; the slice has no
  API that reads them), dashboard ``is_shared``, access-method records, ``$groupidentify``
  emitted by the REST writes (a mocked internal call), lazily created CRM notebooks.
- Dashboard restriction levels and collaborators, deleted dashboards, notebook sharing.
- ``cleanup_expired_sharing_configs``: a maintenance command; the emulator treats expired
  configs as dead at once, which is what the assertions after it observe.
"""

from __future__ import annotations

import httpx
import pytest

from prefect_posthog.emulator import Emulator
from tests.conftest import ADMIN_KEY

MEMBER_KEY = "phx_member_key_for_ported_tests"
OWNER_KEY = "phx_owner_key_for_ported_tests"
PROJECT_READ_KEY = "phx_project_read_only_key"
OTHER_ORG_KEY = "phx_other_org_admin_key"


@pytest.fixture
def api(emulator: Emulator):
    emulator.seed({
        "organizations": [{"id": "org-2", "name": "Other Org"}],
        "projects": [{"id": 2, "organization": "org-2", "name": "Other Team"}],
        "users": [{"id": 10, "org_level": "member"}, {"id": 11, "org_level": "owner"},
                  {"id": 12, "organization": "org-2", "org_level": "admin",
                   "current_team": 2}],
        "personal_api_keys": [{"value": MEMBER_KEY, "user": 10},
                              {"value": OWNER_KEY, "user": 11},
                              {"value": PROJECT_READ_KEY, "scopes": ["project:read"]},
                              {"value": OTHER_ORG_KEY, "user": 12}],
    })

    def call(method: str, path: str, key: str | None = ADMIN_KEY, project: int = 1,
             **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.request(method, f"{emulator.url}/api/projects/{project}/{path}",
                             headers=headers, timeout=10, **kwargs)
    return call


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
    # SPEC §3.2: label is a DRF CharField (issue #13).
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


# -- TestSharing -------------------------------------------------------------------------------

@pytest.fixture
def objects(emulator: Emulator) -> None:
    emulator.seed({"dashboards": [{"id": 1, "name": "example dashboard"},
                                  {"id": 2, "name": "legacy", "share_token": "legacy_token"}],
                   "insights": [{"id": 1}, {"id": 2}],
                   "sharing": [{"resource": "insight", "id": 2, "enabled": False,
                                "access_token": "disabled_token"}]})


def viewer(emulator: Emulator, token: str) -> int:
    return httpx.get(f"{emulator.url}/shared/{token}").status_code


def test_gets_sharing_config(api, emulator, objects) -> None:
    response = api("GET", "dashboards/1/sharing")
    assert response.status_code == 200
    data = response.json()
    assert data == {"access_token": data["access_token"], "created_at": None,
                    "enabled": False, "password_required": False, "settings": None,
                    "share_passwords": [], "user_access_level": "editor"}
    assert [c for c in emulator.read_state()["sharing"].values()
            if c["resource"] == "1:dashboards:1"] == []  # nothing saved by the read


@pytest.mark.parametrize("resource", ["dashboard", "legacy_token_dashboard", "insight",
                                      "insight_disabled_before_rotation_existed", "recording"])
def test_reenabling_sharing_issues_a_new_link(api, emulator, objects, resource) -> None:
    path = {"dashboard": "dashboards/1/sharing", "legacy_token_dashboard": "dashboards/2/sharing",
            "insight": "insights/1/sharing",
            "insight_disabled_before_rotation_existed": "insights/2/sharing",
            "recording": "session_recordings/re-enabled-session/sharing"}[resource]
    revoked = {"legacy_token", "disabled_token"}

    def only_live_link(token: str) -> None:
        assert viewer(emulator, token) == 200
        for dead in revoked:
            assert viewer(emulator, dead) == 404, dead

    first = api("PATCH", path, json={"enabled": True}).json()["access_token"]
    assert first not in revoked
    emulator.admin("POST", "clock", {"advance": 3600})
    api("GET", path)
    only_live_link(first)
    refreshed = api("POST", path + "/refresh/").json()["access_token"]
    api("PATCH", path, json={"enabled": False})
    revoked |= {first, refreshed}
    emulator.admin("POST", "clock", {"advance": 30})
    new = api("PATCH", path, json={"enabled": True}).json()["access_token"]
    assert new not in revoked  # first is still inside its refresh grace: killed anyway
    assert api("GET", path).json()["access_token"] == new
    only_live_link(new)
    emulator.admin("POST", "clock", {"advance": 3600})
    api("GET", path)
    only_live_link(new)


def test_can_edit_enabled_state(api, objects) -> None:
    # test_can_edit_enabled_state and ..._for_insight (their activity-log halves are not
    # modelled); enabling an enabled share or disabling keeps the link.
    for path in ("dashboards/1/sharing", "insights/1/sharing"):
        enabled = api("PATCH", path, json={"enabled": True})
        assert enabled.status_code == 200 and enabled.json()["enabled"]
        token = enabled.json()["access_token"]
        assert api("PATCH", path, json={"enabled": True}).json()["access_token"] == token
        disabled = api("PATCH", path, json={"enabled": False})
        assert disabled.json()["enabled"] is False and disabled.json()["access_token"] == token


def test_should_adopt_legacy_share_token_on_read_without_enabling(api, emulator,
                                                                  objects) -> None:
    emulator.seed({"dashboards": [{"id": 3, "share_token": "my_test_token"}]})
    data = api("GET", "dashboards/3/sharing").json()
    assert data["access_token"] == "my_test_token" and not data["enabled"]
    assert viewer(emulator, "my_test_token") == 404  # adopted, not turned on


def test_read_does_not_enable_sharing_from_stale_legacy_is_shared(api, emulator) -> None:
    emulator.seed({"dashboards": [{"id": 4, "share_token": "stale_legacy_token"}],
                   "sharing": [{"resource": "dashboard", "id": 4, "enabled": False,
                                "access_token": "active_token"}]})
    response = api("GET", "dashboards/4/sharing")
    assert response.status_code == 200 and not response.json()["enabled"]
    assert not any(c["enabled"] for c in emulator.read_state()["sharing"].values()
                   if c["resource"] == "1:dashboards:4")


def test_legacy_token_dashboard_patch_returns_the_live_link(api, emulator, objects) -> None:
    # SPEC §2.2 (issue #13): the token a PATCH hands out is never replaced by the legacy one.
    token = api("PATCH", "dashboards/2/sharing", json={"enabled": True}).json()["access_token"]
    assert token != "legacy_token"
    assert api("GET", "dashboards/2/sharing").json()["access_token"] == token
    assert viewer(emulator, token) == 200 and viewer(emulator, "legacy_token") == 404


@pytest.mark.parametrize("kind", ["dashboards", "insights"])
def test_can_refresh_sharing_access_token(api, objects, kind) -> None:
    # test_can_refresh_sharing_access_token_for_dashboard / _for_insight
    initial = api("PATCH", f"{kind}/1/sharing", json={"enabled": True}).json()["access_token"]
    response = api("POST", f"{kind}/1/sharing/refresh/")
    assert response.status_code == 200
    refreshed = response.json()
    assert refreshed["access_token"] != initial and refreshed["enabled"] is True
    assert api("GET", f"{kind}/1/sharing").json()["access_token"] == refreshed["access_token"]


def test_refresh_token_grace_period(api, emulator, objects) -> None:
    initial = api("PATCH", "dashboards/1/sharing", json={"enabled": True}).json()["access_token"]
    new = api("POST", "dashboards/1/sharing/refresh/").json()["access_token"]
    assert new != initial
    assert viewer(emulator, initial) == 200 and viewer(emulator, new) == 200
    emulator.admin("POST", "clock", {"advance": 240})
    assert viewer(emulator, initial) == 200
    emulator.admin("POST", "clock", {"advance": 120})
    assert viewer(emulator, initial) == 404 and viewer(emulator, new) == 200


def test_public_sharing_disallowed_hides_every_share(api, emulator, objects) -> None:
    # SPEC §2.6 (issue #13): once the organization disallows public sharing, 404 everywhere.
    token = api("PATCH", "insights/1/sharing", json={"enabled": True}).json()["access_token"]
    assert viewer(emulator, token) == 200
    emulator.configure(public_sharing_allowed=False)
    assert viewer(emulator, token) == 404
    assert api("PATCH", "insights/1/sharing", json={"enabled": True}).status_code == 403


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


def test_token_rotation_creates_new_config(api, emulator, objects) -> None:
    original = api("PATCH", "dashboards/1/sharing", json={"enabled": True}).json()
    new = api("POST", "dashboards/1/sharing/refresh/").json()["access_token"]
    assert api("GET", "dashboards/1/sharing").json()["access_token"] == new
    configs = [c for c in emulator.read_state()["sharing"].values()
               if c["resource"] == "1:dashboards:1"]
    old = next(c for c in configs if c["access_token"] == original["access_token"])
    assert old["expires_at"] is not None and viewer(emulator, original["access_token"]) == 200


@pytest.mark.parametrize(("action", "active_after"), [("get", 2), ("patch", 1),
                                                      ("refresh", 1)])
def test_sharing_endpoints_succeed_with_duplicate_active_configs(api, emulator, action,
                                                                 active_after) -> None:
    settings = {"whitelabel": True, "hideExtraDetails": True}
    emulator.seed({"dashboards": [{"id": 5}], "sharing": [
        {"resource": "dashboard", "id": 5, "new_config": True, "access_token": token,
         "settings": settings} for token in ("duplicate_token_one", "duplicate_token_two")]})
    path = "dashboards/5/sharing"
    response = {"get": lambda: api("GET", path),
                "patch": lambda: api("PATCH", path, json={"enabled": True}),
                "refresh": lambda: api("POST", path + "/refresh/")}[action]()
    assert response.status_code == 200
    assert response.json()["enabled"] is True and response.json()["settings"] == settings
    active = [c for c in emulator.read_state()["sharing"].values()
              if c["resource"] == "1:dashboards:5" and c["expires_at"] is None]
    assert len(active) == active_after


def test_legacy_dashboard_share_token_does_not_500_when_token_already_used(api,
                                                                           emulator) -> None:
    emulator.seed({"dashboards": [{"id": 6, "share_token": "legacy_token"}], "sharing": [
        {"resource": "dashboard", "id": 6, "access_token": "legacy_token", "expired": True},
        {"resource": "dashboard", "id": 6, "new_config": True, "access_token": "active_token"}]})
    response = api("GET", "dashboards/6/sharing")
    assert response.status_code == 200 and response.json()["access_token"] == "active_token"


@pytest.mark.parametrize("kind", ["dashboards", "insights"])
def test_settings_are_validated_filtered_and_kept(api, objects, kind) -> None:
    # test_sharing_configuration_settings_field_defaults, test_can_update_settings_field,
    # test_settings_preserved_on_token_rotation,
    # test_settings_field_works_for_both_insights_and_dashboards,
    # TestSharingConfigurationSerializerValidation (valid, partial, unknown, null, empty,
    # invalid type, insights too)
    path = f"{kind}/1/sharing"
    assert api("PATCH", path, json={"enabled": True}).json()["settings"] is None
    valid = {"whitelabel": True, "noHeader": False, "showInspector": True, "legend": False,
             "detailed": True, "theme": "dark"}
    assert api("PATCH", path, json={"settings": {**valid, "customOption": "x"}}
               ).json()["settings"] == valid
    assert api("GET", path).json()["settings"] == valid
    assert api("POST", path + "/refresh/").json()["settings"] == valid
    for given, kept in [({"whitelabel": True, "legend": True, "theme": "light"},
                         {"whitelabel": True, "legend": True, "theme": "light"}),
                        ({"whitelabel": True, "unknownField": "x", "anotherBadField": 123,
                          "legend": False}, {"whitelabel": True, "legend": False}),
                        (None, None), ({}, {})]:
        assert api("PATCH", path, json={"enabled": True, "settings": given}
                   ).json()["settings"] == kept
    bad = api("PATCH", path, json={"enabled": True, "settings": "invalid string"})
    assert bad.status_code == 400 and "Invalid settings format" in bad.json()["detail"]


# -- TestSharePasswordAPI (the share-password API tests) --------------------------------------

@pytest.fixture
def protected_dashboard(emulator: Emulator) -> str:
    emulator.seed({"dashboards": [{"id": 9}], "sharing": [
        {"resource": "dashboard", "id": 9, "enabled": True, "password_required": True}]})
    return "dashboards/9/sharing"


def test_create_password_with_custom_password(api, emulator, protected_dashboard) -> None:
    response = api("POST", protected_dashboard + "/passwords/",
                   json={"raw_password": "my-secure-password", "note": "Test password"})
    assert response.status_code == 201
    data = response.json()
    assert (data["password"], data["note"], data["created_by_email"]) == (
        "my-secure-password", "Test password", "owner@example.com")
    assert "id" in data and "created_at" in data
    token = api("GET", protected_dashboard).json()["access_token"]
    assert httpx.post(f"{emulator.url}/shared/{token}",
                      json={"password": "my-secure-password"}).status_code == 200


def test_create_password_with_generated_password(api, emulator, protected_dashboard) -> None:
    data = api("POST", protected_dashboard + "/passwords/",
               json={"note": "Auto-generated password"}).json()
    assert len(data["password"]) >= 16 and data["note"] == "Auto-generated password"
    token = api("GET", protected_dashboard).json()["access_token"]
    assert httpx.post(f"{emulator.url}/shared/{token}",
                      json={"password": data["password"]}).status_code == 200


def test_create_password_without_password_protection_enabled(api, objects) -> None:
    api("PATCH", "dashboards/1/sharing", json={"enabled": True})
    response = api("POST", "dashboards/1/sharing/passwords/",
                   json={"raw_password": "test-password"})
    assert response.status_code == 400
    assert "Password protection must be enabled" in response.json()["error"]


def test_create_and_delete_password_without_advanced_permissions(api, emulator,
                                                                 protected_dashboard) -> None:
    created = api("POST", protected_dashboard + "/passwords/",
                  json={"raw_password": "test-password"}).json()
    emulator.configure(advanced_permissions=False)
    for response in (api("POST", protected_dashboard + "/passwords/",
                         json={"raw_password": "test-password"}),
                     api("DELETE", protected_dashboard + f"/passwords/{created['id']}/")):
        assert response.status_code == 403
        assert "Advanced Permissions feature" in response.json()["error"]


def test_create_password_validation_too_short(api, protected_dashboard) -> None:
    response = api("POST", protected_dashboard + "/passwords/", json={"raw_password": "short"})
    assert response.status_code == 400 and "at least 8 characters" in str(response.json())


def test_delete_password_and_nonexistent_password(api, protected_dashboard) -> None:
    # test_delete_password, test_delete_nonexistent_password
    created = api("POST", protected_dashboard + "/passwords/",
                  json={"raw_password": "test-password", "note": "To be deleted"}).json()
    assert api("DELETE", protected_dashboard + f"/passwords/{created['id']}/"
               ).status_code == 204
    assert api("GET", protected_dashboard).json()["share_passwords"] == []
    missing = api("DELETE", protected_dashboard + "/passwords/99999/")
    assert missing.status_code == 404 and "Password not found" in missing.json()["detail"]


def test_password_validation_in_sharing_viewer(api, emulator, protected_dashboard) -> None:
    api("POST", protected_dashboard + "/passwords/", json={"raw_password": "secure-test-password"})
    token = api("GET", protected_dashboard).json()["access_token"]
    ok = httpx.post(f"{emulator.url}/shared/{token}", json={"password": "secure-test-password"})
    assert ok.status_code == 200 and "shareToken" in ok.json()
    wrong = httpx.post(f"{emulator.url}/shared/{token}", json={"password": "wrong-password"})
    assert wrong.status_code == 401 and "Incorrect password" in wrong.json()["error"]


def test_sharing_configuration_includes_share_passwords(api, protected_dashboard) -> None:
    for raw, note in (("password1", "First password"), ("password2", "Second password")):
        api("POST", protected_dashboard + "/passwords/", json={"raw_password": raw, "note": note})
    passwords = api("GET", protected_dashboard).json()["share_passwords"]
    assert len(passwords) == 2
    for entry in passwords:
        assert {"id", "created_at", "note", "created_by_email", "is_active"} <= set(entry)
        assert "password" not in entry and "password_hash" not in entry


# -- GroupsViewSetTestCase (ee/clickhouse/views/test/test_clickhouse_groups.py, first 32k) ---

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
