"""Ported from ``posthog/api/test/test_sharing.py`` and the share-password API tests."""

from __future__ import annotations

import httpx
import pytest

from prefect_posthog.emulator import Emulator

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
    # posthog/api/sharing.py (issue #13): the token a PATCH hands out is never replaced by
    # the legacy one.
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
    # posthog/api/sharing.py (issue #13): once the organization disallows public sharing,
    # 404 everywhere.
    token = api("PATCH", "insights/1/sharing", json={"enabled": True}).json()["access_token"]
    assert viewer(emulator, token) == 200
    emulator.configure(public_sharing_allowed=False)
    assert viewer(emulator, token) == 404
    assert api("PATCH", "insights/1/sharing", json={"enabled": True}).status_code == 403



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



# -- TestSharingPublishGate: what stands without warehouse access control ----------------------

def test_already_enabled_share_is_not_regated(api, objects) -> None:
    # test_publisher_with_access_can_enable_sharing, test_already_enabled_share_is_not_regated
    enabled = api("PATCH", "insights/1/sharing", json={"enabled": True})
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True
    again = api("PATCH", "insights/1/sharing",
                json={"enabled": True, "settings": {"whitelabel": True}})
    assert again.status_code == 200
    assert (again.json()["access_token"], again.json()["enabled"]) == (
        enabled.json()["access_token"], True)
