"""Contract tests: where PostHog uses a project secret API key, over real HTTP.

The flags service's ``/flags/definitions`` (PostHog's `rust/feature-flags/src/api/
flag_definitions.rs`, `auth.rs`, `errors.rs`), Django's removed
``feature_flags/local_evaluation`` behind ``legacy_local_evaluation``, ``last_used_at``,
quota limits, and ``POST /api/revoke_leaked_key`` (`posthog/api/leaked_key.py`).
"""

from __future__ import annotations

import httpx
import pytest

from prefect_posthog.emulator import Emulator
from tests.helpers import ADMIN_KEY, READ_ONLY_KEY

TOKEN = "phc_emulator_project_token"  # project 1's capture token
QUOTA = {"type": "quota_limited", "code": "payment_required",
         "detail": "You have exceeded your feature flag request quota", "attr": None}
DEAD = {"type": "authentication_error", "code": "authentication_failed",
        "detail": "Secret API token is invalid.", "attr": None}


@pytest.fixture
def api(emulator: Emulator):
    def call(method: str, path: str, key: str | None = ADMIN_KEY, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.request(method, f"{emulator.url}/api/projects/1/{path}", headers=headers,
                             timeout=10, **kwargs)
    return call


@pytest.fixture
def key(api) -> dict:
    """A live project secret key with feature_flag:read, made through the management API."""
    return api("POST", "project_secret_api_keys/", json={
        "label": "flags", "scopes": ["feature_flag:read"]}).json()


def definitions(emulator: Emulator, value: str | None, token: str | None = TOKEN,
                **headers: str) -> httpx.Response:
    """The request posthog-python 7.9x polls with: ``?token=<phc>&send_cohorts``."""
    params = {"send_cohorts": ""} if token is None else {"token": token, "send_cohorts": ""}
    if value is not None:
        headers["Authorization"] = f"Bearer {value}"
    return httpx.get(f"{emulator.url}/flags/definitions", params=params, headers=headers)


def stored(emulator: Emulator, key_id: str) -> dict:
    return emulator.read_state()["project_secret_api_keys"][key_id]


def test_definitions_answer_the_flags_with_an_etag(emulator, key) -> None:
    emulator.seed({"feature_flags": [{"key": "zeta"}, {"key": "alpha", "active": False}]})
    first = definitions(emulator, key["value"])
    assert first.status_code == 200
    body = first.json()
    assert set(body) >= {"flags", "group_type_mapping", "cohorts"}
    # every flag not deleted, inactive ones too, ordered by key
    assert [(f["key"], f["active"]) for f in body["flags"]] == [("alpha", False), ("zeta", True)]
    assert body["group_type_mapping"] == {"0": "company", "1": "organization"}
    etag = first.headers["etag"]
    assert etag.startswith('W/"') and first.headers["cache-control"] == "private, must-revalidate"
    again = definitions(emulator, key["value"], **{"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    emulator.seed({"feature_flags": [{"key": "beta"}]})
    changed = definitions(emulator, key["value"], **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    # the flags service's legacy path answers the same
    alias = httpx.get(f"{emulator.url}/api/feature_flag/local_evaluation",
                      params={"token": TOKEN}, headers={"Authorization": f"Bearer {key['value']}"})
    assert alias.json() == changed.json()


def test_definitions_refuse_what_the_flags_service_refuses(emulator, api, key) -> None:
    assert definitions(emulator, None).json() == {
        "type": "authentication_error", "code": "not_authenticated",
        "detail": "Authentication credentials were not provided.", "attr": None}
    assert (definitions(emulator, "phs_" + "x" * 47).status_code,
            definitions(emulator, "phs_" + "x" * 47).json()) == (401, DEAD)
    unknown = definitions(emulator, key["value"], token="phc_nobody")
    assert unknown.status_code == 401 and unknown.json()["detail"].startswith(
        "The provided API key is invalid or has expired.")
    # a key without a flag scope is indistinguishable from an unknown one
    endpoint_only = api("POST", "project_secret_api_keys/", json={
        "label": "endpoints", "scopes": ["endpoint:read"]}).json()
    assert definitions(emulator, endpoint_only["value"]).json() == DEAD
    # another team's key, with this team's token
    emulator.seed({"projects": [{"id": 2, "api_token": "phc_two"}],
                   "project_secret_api_keys": [{"project": 2, "label": "other",
                                                "value": "phs_other_team_key_0123456789"}]})
    assert definitions(emulator, "phs_other_team_key_0123456789").json() == DEAD
    assert definitions(emulator, "phs_other_team_key_0123456789", token="phc_two"
                       ).status_code == 200
    # personal keys need a feature-flag scope
    assert definitions(emulator, ADMIN_KEY).status_code == 200
    assert definitions(emulator, READ_ONLY_KEY).json()["detail"] == "Personal API key is invalid."
    post = httpx.post(f"{emulator.url}/flags/definitions", params={"token": TOKEN})
    assert post.status_code == 405 and post.headers["allow"] == "GET, OPTIONS, HEAD"


def test_definitions_without_token_take_the_team_of_the_secret_key(emulator, key) -> None:
    assert definitions(emulator, key["value"], token=None).status_code == 200
    refused = definitions(emulator, ADMIN_KEY, token=None)
    assert refused.status_code == 400 and "missing field `token`" in refused.text


def test_last_used_at_is_stamped_when_empty_or_over_an_hour_old(emulator, key) -> None:
    assert stored(emulator, key["id"])["last_used_at"] is None
    assert definitions(emulator, "phs_" + "y" * 47).status_code == 401  # no key, no stamp
    assert definitions(emulator, key["value"]).status_code == 200
    first = stored(emulator, key["id"])["last_used_at"]
    assert first is not None
    emulator.admin("POST", "clock", {"advance": 3599})
    definitions(emulator, key["value"])
    assert stored(emulator, key["id"])["last_used_at"] == first  # within the hour
    emulator.admin("POST", "clock", {"advance": 2})
    definitions(emulator, key["value"])
    second = stored(emulator, key["id"])["last_used_at"]
    assert second >= first + 3601
    # Django's old local evaluation (older self-hosted PostHog) stamps by the same rule
    emulator.configure(legacy_local_evaluation=True)
    emulator.admin("POST", "clock", {"advance": 3601})
    flags = httpx.get(f"{emulator.url}/api/projects/1/feature_flags/local_evaluation/",
                      headers={"Authorization": f"Bearer {key['value']}"})
    assert flags.status_code == 200
    assert stored(emulator, key["id"])["last_used_at"] >= second + 3601
    # and the management API shows it
    listed = httpx.get(f"{emulator.url}/api/projects/1/project_secret_api_keys/{key['id']}/",
                       headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
    assert listed["last_used_at"] is not None


def test_quota_limited_answers_402_after_authentication(emulator, key) -> None:
    emulator.configure(quota_limited=True)
    limited = definitions(emulator, key["value"])
    assert (limited.status_code, limited.json()) == (402, QUOTA)
    assert stored(emulator, key["id"])["last_used_at"] is not None  # authenticated first
    assert definitions(emulator, "phs_" + "z" * 47).json() == DEAD  # a dead key: 401 first
    emulator.configure(legacy_local_evaluation=True)  # older self-hosted PostHog
    django = f"{emulator.url}/api/projects/1/feature_flags/local_evaluation/"
    old = httpx.get(django, headers={"Authorization": f"Bearer {key['value']}"})
    assert (old.status_code, old.json()) == (402, {
        "type": "quota_limited", "detail": QUOTA["detail"], "code": "payment_required"})
    assert httpx.get(django, headers={"Authorization": "Bearer phs_dead"}).status_code == 401
    emulator.configure(quota_limited=False)
    assert definitions(emulator, key["value"]).status_code == 200


def test_django_local_evaluation_as_current_posthog_has_it(emulator, key) -> None:
    """PostHog #62229 removed the action: the path is a flag's detail route, which takes no
    project secret key. This is the emulator's default."""
    url = f"{emulator.url}/api/projects/1/feature_flags/local_evaluation/"
    refused = httpx.get(url, headers={"Authorization": f"Bearer {key['value']}"})
    assert refused.status_code == 401 and refused.json()["detail"] == (
        "Personal API key found in request Authorization header is invalid.")
    assert httpx.get(url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 404
    assert definitions(emulator, key["value"]).status_code == 200


def revoke(emulator: Emulator, body: object, **kwargs) -> httpx.Response:
    return httpx.post(f"{emulator.url}/api/revoke_leaked_key", json=body, **kwargs)


def test_revoke_leaked_key_rolls_a_live_key_behind_the_owners_back(emulator, api, key) -> None:
    before = stored(emulator, key["id"])
    answer = revoke(emulator, {"token": key["value"]})
    assert (answer.status_code, answer.json()) == (200, {"found": True,
                                                         "type": "project_secret_api_key"})
    after = api("GET", f"project_secret_api_keys/{key['id']}/").json()
    assert after["last_rolled_at"] is not None and after["label"] == "flags"
    assert stored(emulator, key["id"])["secure_value"] != before["secure_value"]
    assert definitions(emulator, key["value"]).json() == DEAD
    # the old value is no key any more
    assert revoke(emulator, {"token": key["value"]}).json() == {"found": False, "type": None}
    assert revoke(emulator, {"token": "phs_unknown"}).json() == {"found": False, "type": None}
    assert revoke(emulator, {"token": "not a key"}).json() == {"found": False, "type": None}


def test_revoke_leaked_key_rolls_personal_keys_too(emulator) -> None:
    emulator.seed({"personal_api_keys": [{"value": "phx_leaked_personal_key"}]})
    assert revoke(emulator, {"token": "phx_leaked_personal_key"}).json() == {
        "found": True, "type": "personal_api_key"}
    r = httpx.get(f"{emulator.url}/api/projects/1/groups/", params={"group_type_index": 0},
                  headers={"Authorization": "Bearer phx_leaked_personal_key"})
    assert r.status_code == 401


@pytest.mark.parametrize(("body", "code"), [
    ({}, "required"), ({"token": ""}, "blank"), ({"token": None}, "null"),
    ({"token": "phs_" + "a" * 197}, "max_length"),
])
def test_revoke_leaked_key_validates_the_token(emulator, body, code) -> None:
    answer = revoke(emulator, body)
    assert answer.status_code == 400
    assert (answer.json()["code"], answer.json()["attr"]) == (code, "token")


def test_revoke_leaked_key_is_json_post_only_and_throttled_per_address(emulator) -> None:
    url = f"{emulator.url}/api/revoke_leaked_key"
    assert httpx.post(url, data={"token": "phs_x"}).status_code == 415
    assert httpx.get(url).status_code == 405
    emulator.configure(rate_limit="480/min")
    answers = [revoke(emulator, {"token": f"phs_{i}"}).status_code for i in range(11)]
    assert answers == [200] * 10 + [429]  # LeakedKeyReportThrottle: 10/min per IP
