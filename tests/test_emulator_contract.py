"""Contract tests: the emulator answers as PostHog's server code does, over raw HTTP."""

from __future__ import annotations

import httpx
import pytest

from prefect_posthog.emulator import Emulator
from tests.helpers import ADMIN_KEY, READ_ONLY_KEY, flags_status


@pytest.fixture
def api(emulator: Emulator):
    def call(method: str, path: str, key: str | None = ADMIN_KEY, prefix: str = "projects/1",
             **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.request(method, f"{emulator.url}/api/{prefix}/{path}", headers=headers,
                             timeout=10, **kwargs)
    return call


def err(response: httpx.Response) -> tuple:
    body = response.json()
    return response.status_code, body.get("type"), body.get("code"), body.get("attr")


@pytest.fixture
def acme(emulator: Emulator) -> None:
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": "acme",
                               "group_properties": {"plan": "free"}}]})


# -- §0 cross-cutting -------------------------------------------------------------------------

def test_both_prefixes_trailing_slash_optional_and_current(api, acme) -> None:
    q = "?group_type_index=0&group_key=acme"
    for prefix in ("projects/1", "environments/1", "projects/@current"):
        for path in ("groups/find", "groups/find/"):
            assert api("GET", path + q, prefix=prefix).status_code == 200


def test_auth_errors_exact_bodies(api) -> None:
    r = api("GET", "groups/?group_type_index=0", key=None)
    assert err(r) == (401, "authentication_error", "not_authenticated", None)
    r = api("GET", "groups/?group_type_index=0", key="phx_unknown")
    assert r.status_code == 401
    assert r.json()["detail"] == ("Personal API key found in request Authorization header "
                                  "is invalid.")


def test_key_in_query_string_is_accepted_like_posthog(api, emulator) -> None:
    r = httpx.get(f"{emulator.url}/api/projects/1/groups/",
                  params={"group_type_index": 0, "personal_api_key": ADMIN_KEY})
    assert r.status_code == 200


def test_project_not_found_and_other_org(api, emulator) -> None:
    assert api("GET", "groups/?group_type_index=0", prefix="projects/99").json()["detail"] == \
        "Project not found."
    assert api("GET", "groups/?group_type_index=0", prefix="projects/abc").status_code == 404
    emulator.seed({"organizations": [{"id": "org-2", "name": "Other"}],
                   "projects": [{"id": 2, "organization": "org-2"}]})
    r = api("GET", "groups/?group_type_index=0", prefix="projects/2")
    assert r.status_code == 403 and r.json()["detail"] == "You don't have access to the project."


def test_missing_scope_named(api, acme) -> None:
    r = api("POST", "groups/update_property?group_type_index=0&group_key=acme",
            key=READ_ONLY_KEY, json={"key": "a", "value": 1})
    assert err(r) == (403, "authentication_error", "permission_denied", None)
    assert r.json()["detail"] == "API key missing required scope 'group:write'"
    # activity needs activity_log:read, not group:read
    r = api("GET", "groups/activity?group_type_index=0&group_key=acme", key=READ_ONLY_KEY)
    assert r.json()["detail"] == "API key missing required scope 'activity_log:read'"


def test_write_scope_satisfies_read(api, emulator, acme) -> None:
    emulator.seed({"personal_api_keys": [{"value": "phx_w", "scopes": ["group:write"]}]})
    assert api("GET", "groups/?group_type_index=0", key="phx_w").status_code == 200


def test_scoped_teams(api, emulator) -> None:
    emulator.seed({"projects": [{"id": 3}],
                   "personal_api_keys": [{"value": "phx_t3", "scoped_teams": [3]}]})
    r = api("GET", "groups/?group_type_index=0", key="phx_t3")
    assert r.json()["detail"] == "API key does not have access to the requested project: ID 1."


def test_rate_limit_429_with_retry_after_and_nothing_applied(api, emulator, acme) -> None:
    emulator.configure(rate_limit="3/min")
    for i in range(3):
        assert api("POST", "groups/update_property?group_type_index=0&group_key=acme",
                   json={"key": "n", "value": i}).status_code == 200
    r = api("POST", "groups/update_property?group_type_index=0&group_key=acme",
            json={"key": "n", "value": 99})
    assert err(r) == (429, "throttled_error", "throttled", None)
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.json()["detail"].startswith("Request was throttled. Expected available in")
    emulator.configure(rate_limit="")
    assert api("GET", "groups/find?group_type_index=0&group_key=acme").json()[
        "group_properties"]["n"] == 2


def test_method_not_allowed(api) -> None:
    assert err(api("DELETE", "groups/")) [:3] == (405, "invalid_request", "method_not_allowed")


# -- §1 groups ---------------------------------------------------------------------------------

def test_list_requires_group_type_index(api) -> None:
    assert err(api("GET", "groups/"))[3] == "group_type_index"
    r = api("GET", "groups/?group_type_index=x")
    assert r.json()["detail"] == "A valid integer is required."


def test_list_keyset_cursor_pages_of_100_newest_first(api, emulator) -> None:
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": f"g{i:03d}"}
                              for i in range(250)]})
    keys, url, pages = [], "groups/?group_type_index=0", 0
    while url:
        body = api("GET", url).json()
        assert body["previous"] is None and "count" not in body
        keys += [g["group_key"] for g in body["results"]]
        pages += 1
        url = body["next"].split("/api/projects/1/", 1)[1] if body["next"] else None
    assert pages == 3 and len(keys) == 250 and len(set(keys)) == 250
    assert keys[0] == "g249"  # created_at DESC


def test_list_invalid_cursor_is_first_page_and_unknown_type_empty(api, emulator, acme) -> None:
    first = api("GET", "groups/?group_type_index=0").json()
    assert api("GET", "groups/?group_type_index=0&cursor=%%%garbage").json() == first
    assert api("GET", "groups/?group_type_index=3").json()["results"] == []


def test_list_filters(api, emulator) -> None:
    emulator.seed({"groups": [
        {"group_type_index": 0, "group_key": "Alpha-1", "group_properties": {"x": "Zebra"}},
        {"group_type_index": 0, "group_key": "beta", "group_properties": {"x": "y"}}]})
    assert [g["group_key"] for g in api("GET", "groups/?group_type_index=0&group_key=alpha")
            .json()["results"]] == ["Alpha-1"]
    assert [g["group_key"] for g in api("GET", "groups/?group_type_index=0&search=zebra")
            .json()["results"]] == ["Alpha-1"]


def test_create_group_and_duplicate(api) -> None:
    body = {"group_type_index": 0, "group_key": "new", "group_properties": None}
    r = api("POST", "groups/", json=body)
    assert r.status_code == 201 and r.json()["group_properties"] == {}
    r = api("POST", "groups/", json=body)
    assert err(r) == (400, "validation_error", "invalid_input", "detail")
    assert r.json()["detail"] == "A group with this key already exists"
    assert err(api("POST", "groups/", json={"group_key": "k"}))[2:] == ("required",
                                                                        "group_type_index")
    assert err(api("POST", "groups/", json={"group_type_index": 0, "group_key": "x" * 401}))[
        2:] == ("max_length", "group_key")


def test_find_404_and_missing_params(api, acme) -> None:
    assert api("GET", "groups/find?group_type_index=1&group_key=acme").status_code == 404
    assert err(api("GET", "groups/find?group_key=acme"))[3] == "group_type_index"
    assert err(api("GET", "groups/find?group_type_index=0"))[3] == "group_key"
    assert api("GET", "groups/find?group_type_index=0&group_key=acme").json()["notebook"] is None


def test_update_property_merges_and_validates(api, acme) -> None:
    q = "groups/update_property?group_type_index=0&group_key=acme"
    r = api("POST", q, json={"key": "seats", "value": 5})
    assert r.status_code == 200 and r.json()["group_properties"] == {"plan": "free", "seats": 5}
    assert err(api("POST", q, json={"key": "seats", "value": None}))[3] == "value"
    assert err(api("POST", q, json={"value": 1}))[3] == "key"
    # the body the old OpenAPI schema documents is rejected, as PostHog does
    assert api("POST", q, json={"group_properties": {"a": 1}}).status_code == 400


def test_delete_property_once_then_400(api, acme) -> None:
    q = "groups/delete_property?group_type_index=0&group_key=acme"
    r = api("POST", q, json={"$unset": "plan"})
    assert r.status_code == 200 and r.json()["group_properties"] == {}
    r = api("POST", q, json={"$unset": "plan"})
    assert err(r) == (400, "validation_error", "invalid_input", "$unset")
    assert r.json()["detail"] == "Property 'plan' does not exist on this group."
    assert err(api("POST", q, json={"$unset": ["plan"]}))[3] == "$unset"


def test_activity_pages(api, acme) -> None:
    q = "groups/update_property?group_type_index=0&group_key=acme"
    for i in range(3):
        api("POST", q, json={"key": f"k{i}", "value": i})
    r = api("GET", "groups/activity?group_type_index=0&group_key=acme&limit=2").json()
    assert r["total_count"] == 3 and len(r["results"]) == 2 and r["next"] and not r["previous"]
    assert r["results"][0]["activity"] == "create_property"
    assert r["results"][0]["detail"]["name"] == "k2"
    assert api("GET", "groups/activity?group_type_index=2&group_key=acme").status_code == 404


def test_related_requires_id_and_returns_array(api, emulator, acme) -> None:
    assert err(api("GET", "groups/related"))[3] == "id"
    emulator.seed({"groups": [{"group_type_index": 1, "group_key": "org-a"}],
                   "related": [{"from": {"group_type_index": 0, "group_key": "acme"},
                                "to": [{"group_type_index": 1, "group_key": "org-a"}]}]})
    body = api("GET", "groups/related?group_type_index=0&id=acme").json()
    assert isinstance(body, list) and body[0]["type"] == "group" and body[0]["id"] == "org-a"
    assert api("GET", "groups/related?group_type_index=9&id=acme").status_code == 400


def test_property_definitions_and_values(api, emulator) -> None:
    emulator.seed({"groups": [
        {"group_type_index": 0, "group_key": f"c{i}",
         "group_properties": {"industry": "saas" if i % 3 else "retail", "name": f"n{i}"}}
        for i in range(30)]})
    defs = api("GET", "groups/property_definitions").json()
    assert defs["0"][0] == {"name": "industry", "count": 30}
    values = api("GET", "groups/property_values?group_type_index=0&key=industry").json()
    assert values["results"][0] == {"name": "saas", "count": 20} and values["refreshing"] is False
    names = api("GET", "groups/property_values?group_type_index=0&key=name").json()["results"]
    assert len(names) == 20  # PostHog returns at most 20
    assert err(api("GET", "groups/property_values?group_type_index=0"))[3] == "key"
    emulator.configure(property_definitions_route=False)
    assert api("GET", "groups/property_definitions").status_code == 404


# -- §2 sharing --------------------------------------------------------------------------------

@pytest.fixture
def insight(emulator) -> None:
    emulator.seed({"insights": [{"id": 7}], "dashboards": [{"id": 3}]})


def test_sharing_get_is_one_unsaved_object_with_fresh_token(api, insight) -> None:
    a = api("GET", "insights/7/sharing").json()
    b = api("GET", "insights/7/sharing/").json()
    assert isinstance(a, dict) and a["created_at"] is None and a["enabled"] is False
    assert a["access_token"] != b["access_token"] and a["share_passwords"] == []
    assert api("GET", "insights/8/sharing").json()["detail"] == "Insight not found."
    assert api("GET", "dashboards/9/sharing").json()["detail"] == "Dashboard not found."
    assert api("GET", "session_recordings/any-session/sharing").status_code == 200


def test_sharing_patch_keeps_token_and_filters_settings(api, insight) -> None:
    first = api("PATCH", "insights/7/sharing", json={"enabled": True, "settings": {
        "whitelabel": "true", "unknown": 1, "legend": None}}).json()
    assert first["enabled"] is True and first["settings"] == {"whitelabel": True}
    again = api("PATCH", "insights/7/sharing", json={"enabled": False}).json()
    assert again["access_token"] == first["access_token"]
    assert err(api("PATCH", "insights/7/sharing", json={"settings": "x"}))[3] == "settings"


def test_password_required_needs_advanced_permissions(api, emulator, insight) -> None:
    emulator.configure(advanced_permissions=False)
    r = api("PATCH", "insights/7/sharing", json={"password_required": True})
    assert r.status_code == 403 and r.json() == {
        "error": "Sharing with password requires the Advanced Permissions feature"}


def test_passwords_lifecycle(api, emulator, insight) -> None:
    r = api("POST", "insights/7/sharing/passwords", json={"raw_password": "longenough"})
    assert r.status_code == 400 and r.json() == {
        "error": "Password protection must be enabled before creating passwords"}
    config = api("PATCH", "insights/7/sharing", json={"enabled": True,
                                                      "password_required": True}).json()
    r = api("POST", "insights/7/sharing/passwords", json={"raw_password": "short"})
    assert err(r)[3] == "raw_password"
    r = api("POST", "insights/7/sharing/passwords", json={"note": "gen"})
    assert r.status_code == 201 and set(r.json()) == {"id", "password", "note", "created_at",
                                                      "created_by_email"}
    generated = r.json()
    listed = api("GET", "insights/7/sharing").json()["share_passwords"]
    assert [p["id"] for p in listed] == [generated["id"]] and "password" not in listed[0]
    viewer = f"{emulator.url}/shared/{config['access_token']}"
    assert httpx.post(viewer, json={"password": generated["password"]}).status_code == 200
    assert httpx.post(viewer, json={"password": "wrong-one"}).json() == {
        "error": "Incorrect password"}
    path = f"insights/7/sharing/passwords/{generated['id']}"
    assert api("DELETE", path).status_code == 204
    r = api("DELETE", path)
    assert r.status_code == 404 and r.json()["detail"] == "Password not found"
    assert httpx.post(viewer, json={"password": generated["password"]}).status_code == 401


def test_refresh_rotates_token_copies_passwords_and_grace(api, emulator, insight) -> None:
    old = api("PATCH", "insights/7/sharing", json={"enabled": True,
                                                   "password_required": True}).json()
    pw = api("POST", "insights/7/sharing/passwords", json={"raw_password": "password-1"}).json()
    new = api("POST", "insights/7/sharing/refresh").json()
    assert new["access_token"] != old["access_token"] and new["enabled"] is True
    assert len(new["share_passwords"]) == 1 and new["share_passwords"][0]["id"] != pw["id"]
    # old password id belongs to the expired config now
    assert api("DELETE", f"insights/7/sharing/passwords/{pw['id']}").status_code == 404
    old_link = f"{emulator.url}/shared/{old['access_token']}"
    assert httpx.post(old_link, json={"password": "password-1"}).status_code == 200
    emulator.admin("POST", "clock", {"advance": 301})
    assert httpx.post(old_link, json={"password": "password-1"}).status_code == 404
    assert httpx.post(f"{emulator.url}/shared/{new['access_token']}",
                      json={"password": "password-1"}).status_code == 200


def test_refresh_works_with_nothing_saved(api, insight) -> None:
    body = api("POST", "insights/7/sharing/refresh").json()
    assert body["enabled"] is False and body["created_at"] is not None


# -- §3 project secret API keys ------------------------------------------------------------------

def test_psak_create_shows_value_once(api) -> None:
    r = api("POST", "project_secret_api_keys/", json={"label": "backend",
                                                     "scopes": ["feature_flag:read"]})
    assert r.status_code == 201
    key = r.json()
    assert key["value"].startswith("phs_") and key["mask_value"] == \
        f"{key['value'][:4]}...{key['value'][-4:]}"
    assert key["last_rolled_at"] is None
    assert api("GET", f"project_secret_api_keys/{key['id']}").json()["value"] is None
    listed = api("GET", "project_secret_api_keys/").json()
    assert listed["count"] == 1 and listed["results"][0]["value"] is None


@pytest.mark.parametrize(("body", "code", "attr", "detail"), [
    ({"scopes": ["feature_flag:read"]}, "required", "label", None),
    ({"label": " ", "scopes": ["feature_flag:read"]}, "blank", "label", None),
    ({"label": "x" * 41, "scopes": ["feature_flag:read"]}, "max_length", "label", None),
    ({"label": "a"}, "required", "scopes", None),
    ({"label": "a", "scopes": []}, "empty", "scopes", "This list may not be empty."),
    ({"label": "a", "scopes": ["*"]}, "invalid_input", "scopes",
     "Wildcard scope '*' is not allowed for project API keys. Please specify explicit scopes."),
    ({"label": "a", "scopes": ["nope:read"]}, "invalid_input", "scopes",
     "Invalid scope: nope:read"),
    ({"label": "a", "scopes": ["group:read"]}, "invalid_input", "scopes", None),
])
def test_psak_validation(api, body, code, attr, detail) -> None:
    r = api("POST", "project_secret_api_keys/", json=body)
    assert err(r) == (400, "validation_error", code, attr)
    if detail:
        assert r.json()["detail"] == detail


def test_psak_duplicate_label_and_cap(api, emulator) -> None:
    body = {"label": "dup", "scopes": ["feature_flag:read"]}
    api("POST", "project_secret_api_keys/", json=body)
    r = api("POST", "project_secret_api_keys/", json=body)
    assert err(r)[3] is None and r.json()["detail"] == \
        "Project secret API key with label 'dup' already exists."
    emulator.seed({"project_secret_api_keys": [{"label": f"k{i}"} for i in range(49)]})
    r = api("POST", "project_secret_api_keys/", json={"label": "one-more",
                                                      "scopes": ["feature_flag:read"]})
    assert r.json()["detail"].startswith("You can only have 50 project secret API keys.")


def test_psak_roll_kills_old_value_at_once(api, emulator) -> None:
    key = api("POST", "project_secret_api_keys/", json={"label": "k",
                                                       "scopes": ["feature_flag:read"]}).json()
    assert flags_status(emulator.url, key["value"]) == 200
    rolled = api("POST", f"project_secret_api_keys/{key['id']}/roll").json()
    assert rolled["value"] != key["value"] and rolled["last_rolled_at"]
    assert rolled["id"] == key["id"] and rolled["label"] == "k"
    assert flags_status(emulator.url, key["value"]) == 401
    assert flags_status(emulator.url, rolled["value"]) == 200


def test_psak_patch_put_delete(api) -> None:
    key = api("POST", "project_secret_api_keys/", json={"label": "k",
                                                       "scopes": ["feature_flag:read"]}).json()
    path = f"project_secret_api_keys/{key['id']}/"
    assert api("PATCH", path, json={"label": "k2"}).json()["label"] == "k2"
    assert err(api("PATCH", path, json={"scopes": []}))[3] == "scopes"
    assert err(api("PUT", path, json={"label": "k3"}))[3] == "scopes"
    assert api("DELETE", path).status_code == 204
    assert api("DELETE", path).status_code == 404


def test_psak_needs_project_admin_and_psak_cannot_manage(api, emulator) -> None:
    emulator.seed({"users": [{"id": 5, "org_level": "member"}],
                   "personal_api_keys": [{"value": "phx_member", "user": 5}]})
    r = api("POST", "project_secret_api_keys/", key="phx_member",
            json={"label": "x", "scopes": ["feature_flag:read"]})
    assert r.status_code == 403 and r.json()["detail"] == \
        "You don't have sufficient permissions in the project."
    assert api("GET", "project_secret_api_keys/", key="phx_member").status_code == 200
    key = api("POST", "project_secret_api_keys/", json={"label": "k",
                                                       "scopes": ["feature_flag:read"]}).json()
    assert api("GET", "project_secret_api_keys/", key=key["value"]).status_code == 401


def test_fault_injection_lost_response_applies_then_drops(api, emulator) -> None:
    key = api("POST", "project_secret_api_keys/", json={"label": "k",
                                                       "scopes": ["feature_flag:read"]}).json()
    emulator.set_faults(schedule=[{"operation": "roll_project_secret_api_key",
                                   "fault": "lost_response"}])
    with pytest.raises(httpx.TransportError):
        api("POST", f"project_secret_api_keys/{key['id']}/roll/")
    after = api("GET", f"project_secret_api_keys/{key['id']}/").json()
    assert after["last_rolled_at"] is not None  # applied, response lost
    assert flags_status(emulator.url, key["value"]) == 401


def test_fault_injection_stall_applies_and_logs_then_holds_the_answer(api, emulator) -> None:
    key = api("POST", "project_secret_api_keys/", json={"label": "k",
                                                       "scopes": ["feature_flag:read"]}).json()
    emulator.set_faults(stall_seconds=10, schedule=[{"operation": "roll_project_secret_api_key",
                                                     "fault": "stall"}])
    with pytest.raises(httpx.ReadTimeout):  # the client gives up while the answer is held
        httpx.post(f"{emulator.url}/api/projects/1/project_secret_api_keys/{key['id']}/roll/",
                   headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=1)
    [entry] = [r for r in emulator.read_requests()
               if r["operation"] == "roll_project_secret_api_key"]
    assert (entry["fault"], entry["status"]) == ("stall", 200)  # logged as it landed
    assert flags_status(emulator.url, key["value"]) == 401  # applied: the old value is dead


def test_state_file_round_trip(tmp_path) -> None:
    path = tmp_path / "state.json"
    with Emulator(personal_api_keys={"phx_s": None}, state_file=str(path)) as first:
        first.seed({"groups": [{"group_type_index": 0, "group_key": "kept"}]})
    with Emulator(state_file=str(path)) as second:
        r = httpx.get(f"{second.url}/api/projects/1/groups/find",
                      params={"group_type_index": 0, "group_key": "kept"},
                      headers={"Authorization": "Bearer phx_s"})
        assert r.status_code == 200


def test_reset_restores_the_starting_rate_limit_and_ingestion_lag() -> None:
    with Emulator(personal_api_keys={"phx_r": None}, rate_limit="2/min",
                  ingestion_lag=0.5) as posthog:
        posthog.configure(rate_limit="", ingestion_lag=9)
        posthog.reset()
        assert posthog.admin("GET", "ingestion")["lag"] == 0.5
        posthog.seed({"personal_api_keys": [{"value": "phx_r"}]})
        statuses = [httpx.get(f"{posthog.url}/api/projects/1/groups_types/",
                              headers={"Authorization": "Bearer phx_r"}).status_code
                    for _ in range(3)]
        assert statuses == [200, 200, 429]  # the 2/min it started with, not the test's ""


# -- more of PostHog's behaviour, one statement each ------------------------------------------

def test_key_in_body_and_form_encoded_bodies(api, emulator, acme) -> None:
    r = httpx.post(f"{emulator.url}/api/projects/1/groups/update_property/",
                   params={"group_type_index": 0, "group_key": "acme"},
                   data={"key": "via", "value": "form", "personal_api_key": ADMIN_KEY})
    assert r.status_code == 200 and r.json()["group_properties"]["via"] == "form"
    r = httpx.get(f"{emulator.url}/api/projects/1/groups/", params={"group_type_index": 0},
                  headers={"Authorization": "Bearer phx_wrong"})
    assert "Authorization header" in r.json()["detail"]
    r = httpx.post(f"{emulator.url}/api/projects/1/groups/", json={"personal_api_key": "bad"})
    assert r.json()["detail"] == "Personal API key found in request body is invalid."


def test_org_forbidding_personal_keys_for_members(api, emulator) -> None:
    emulator.seed({"organizations": [{"id": "org-1", "name": "Strict",
                                      "members_can_use_personal_api_keys": False}],
                   "users": [{"id": 6, "org_level": "member"}],
                   "personal_api_keys": [{"value": "phx_m6", "user": 6}]})
    r = api("GET", "groups/?group_type_index=0", key="phx_m6")
    assert r.status_code == 403 and r.json()["detail"].startswith(
        "Organization 'Strict' does not allow using personal API keys.")
    assert api("GET", "groups/?group_type_index=0").status_code == 200  # admins still may


def test_public_sharing_disabled(api, emulator, insight) -> None:
    emulator.seed({"organizations": [{"id": "org-1", "name": "Org",
                                      "public_sharing_allowed": False}]})
    r = api("PATCH", "insights/7/sharing", json={"enabled": True})
    assert r.status_code == 403 and r.json()["detail"] == \
        "Public sharing is disabled for this organization."
    assert api("PATCH", "insights/7/sharing", json={"enabled": False}).status_code == 200


def test_dashboard_legacy_share_token_adopted_by_get_and_cleared_by_refresh(api,
                                                                           emulator) -> None:
    emulator.seed({"dashboards": [{"id": 4, "share_token": "legacy-token-123"}]})
    first = api("GET", "dashboards/4/sharing").json()
    assert first["access_token"] == "legacy-token-123" and first["enabled"] is False
    assert first["created_at"] is not None  # GET saved it
    refreshed = api("POST", "dashboards/4/sharing/refresh").json()
    assert refreshed["access_token"] != "legacy-token-123"
    assert api("GET", "dashboards/4/sharing").json()["access_token"] == \
        refreshed["access_token"]


def test_capture_failure_body_after_the_write(api, emulator, acme) -> None:
    emulator.set_faults(schedule=[{"operation": "update_group_property", "fault": "capture"}])
    r = api("POST", "groups/update_property?group_type_index=0&group_key=acme",
            json={"key": "tier", "value": "gold"})
    assert r.status_code == 502 and r.json()["type"] == "capture_http_error"
    found = api("GET", "groups/find?group_type_index=0&group_key=acme").json()
    assert found["group_properties"]["tier"] == "gold"  # the write happened first


def test_missing_group_type_mapping_is_404(api, emulator, acme) -> None:
    state = emulator.read_state()
    assert state["group_types"]["1"]["0"]
    emulator.seed({"groups": [{"group_type_index": 3, "group_key": "t3"}]})
    emulator.state.data["group_types"]["1"].pop("3")
    r = api("POST", "groups/update_property?group_type_index=3&group_key=t3",
            json={"key": "a", "value": 1})
    assert r.status_code == 404


def test_psak_rename_to_existing_label_is_a_500(api) -> None:
    body = {"scopes": ["feature_flag:read"]}
    api("POST", "project_secret_api_keys/", json={"label": "a", **body})
    key = api("POST", "project_secret_api_keys/", json={"label": "b", **body}).json()
    r = api("PATCH", f"project_secret_api_keys/{key['id']}/", json={"label": "a"})
    assert r.status_code == 500 and r.json()["type"] == "server_error"  # PostHog answers 500 here
