"""Every task against the emulator: success, main errors, retry behaviour."""

from __future__ import annotations

from datetime import UTC

import pytest
from prefect import flow
from pydantic import SecretStr

from prefect_posthog import PostHogCredentials
from prefect_posthog import tasks as t
from prefect_posthog.client import (
    FeatureNotAvailableError,
    InvalidInputError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RetryPolicy,
    ServerError,
    ValidationError,
)
from tests.helpers import READ_ONLY_KEY


def run(task, *args, **kwargs):
    """Run one task inside a flow, as users do, with fast task retries."""
    @flow
    def wrapper():
        return task.with_options(retry_delay_seconds=0)(*args, **kwargs)
    return wrapper()


@pytest.fixture
def seeded(emulator):
    emulator.seed({
        "groups": [{"group_type_index": 0, "group_key": f"c{i}",
                    "group_properties": {"plan": "free", "n": i}} for i in range(3)]
        + [{"group_type_index": 1, "group_key": "org-1"}],
        "related": [{"from": {"group_type_index": 0, "group_key": "c0"},
                     "to": [{"group_type_index": 1, "group_key": "org-1"}]}],
        "insights": [{"id": 1}], "dashboards": [{"id": 2}]})
    return emulator


def test_group_tasks(credentials, seeded) -> None:
    assert [g.group_key for g in run(t.list_groups, credentials, 0)] == ["c2", "c1", "c0"]
    assert len(run(t.list_groups, credentials, 0, limit=2)) == 2
    assert run(t.find_group, credentials, 0, "c1").group_properties["n"] == 1
    created = run(t.create_group, credentials, 0, "new", {"plan": "pro"})
    assert created.group_properties == {"plan": "pro"}
    updated = run(t.update_group_property, credentials, 0, "c1", "plan", "pro")
    assert updated.group_properties == {"plan": "pro", "n": 1}
    assert run(t.delete_group_property, credentials, 0, "c1", "n").group_properties == {
        "plan": "pro"}
    activity = run(t.get_group_activity, credentials, 0, "c1")
    assert [e.activity for e in activity.results] == ["update_property", "update_property"]
    assert run(t.list_related_groups, credentials, "c0", 0)[0].group_key == "org-1"
    defs = run(t.list_group_property_definitions, credentials)
    assert {d.name for d in defs[0]} == {"plan", "n"}
    values = run(t.list_group_property_values, credentials, 0, "plan")
    assert {v.name: v.count for v in values} == {"free": 2, "pro": 2}


def test_group_task_errors(credentials, seeded, emulator) -> None:
    with pytest.raises(NotFoundError):
        run(t.find_group, credentials, 0, "missing")
    with pytest.raises(ValidationError) as info:
        run(t.delete_group_property, credentials, 0, "c0", "never-there")
    assert info.value.attr == "$unset"
    with pytest.raises(ValidationError) as info:
        run(t.create_group, credentials, 0, "c0")
    assert "already exists" in str(info.value)
    with pytest.raises(InvalidInputError) as info:
        run(t.update_group_property, credentials, 0, "c0", "plan", None)
    assert info.value.field == "value"
    reader = credentials.model_copy(update={"personal_api_key": SecretStr(READ_ONLY_KEY)})
    with pytest.raises(PermissionDeniedError) as info:
        run(t.update_group_property, reader, 0, "c0", "plan", "x")
    assert info.value.missing_scope == "group:write"
    with pytest.raises(PermissionDeniedError) as info:
        run(t.get_group_activity, reader, 0, "c0")
    assert info.value.missing_scope == "activity_log:read"
    emulator.configure(property_definitions_route=False)
    with pytest.raises(NotFoundError, match="no longer serves"):
        run(t.list_group_property_definitions, credentials)


def test_tasks_refuse_raw_key_strings(seeded) -> None:
    with pytest.raises(InvalidInputError) as info:
        run(t.find_group, "phx_raw", 0, "c0")
    assert info.value.field == "credentials"


def test_idempotent_task_retries_outage_beyond_client(credentials, seeded, emulator,
                                                      monkeypatch) -> None:
    # 5 client attempts fail (503) and the first task retry succeeds.
    emulator.set_faults(schedule=[{"operation": "find_group", "fault": "503", "count": 5}])
    fast = credentials.model_copy(update={"max_attempts": 5})
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt, retry_after: 0.0)
    assert run(t.find_group, fast, 0, "c0").group_key == "c0"
    ops = [r for r in emulator.read_requests() if r["operation"] == "find_group"]
    assert len(ops) == 6


def test_non_idempotent_task_is_not_retried(credentials, seeded, emulator) -> None:
    emulator.set_faults(schedule=[{"operation": "create_group", "fault": "502", "count": 1}])
    with pytest.raises(OutcomeUnknownError):
        run(t.create_group, credentials, 0, "fresh")
    assert len([r for r in emulator.read_requests() if r["operation"] == "create_group"]) == 1


def test_not_found_is_not_retried(credentials, seeded, emulator) -> None:
    with pytest.raises(NotFoundError):
        run(t.find_group, credentials, 0, "nope")
    assert len([r for r in emulator.read_requests() if r["operation"] == "find_group"]) == 1


def test_delete_property_lost_response_is_reconciled(credentials, seeded, emulator) -> None:
    emulator.set_faults(schedule=[{"operation": "delete_group_property",
                                   "fault": "lost_response"}])
    group = run(t.delete_group_property, credentials, 0, "c2", "plan")
    assert "plan" not in group.group_properties


@pytest.mark.parametrize("resource", ["insight", "session_recording", "dashboard"])
def test_sharing_tasks(credentials, seeded, emulator, resource) -> None:
    rid = {"insight": 1, "dashboard": 2, "session_recording": "sess-1"}[resource]
    get = getattr(t, f"get_{resource}_sharing")
    assert run(get, credentials, rid).enabled is False
    enabled = run(getattr(t, f"update_{resource}_sharing"), credentials, rid, enabled=True,
                  password_required=True)
    assert enabled.enabled and enabled.password_required
    created = run(getattr(t, f"create_{resource}_sharing_password"), credentials, rid,
                  raw_password=SecretStr("a-long-password"), note="n")
    assert created.password.get_secret_value() == "a-long-password"
    assert "a-long-password" not in repr(created)
    refreshed = run(getattr(t, f"refresh_{resource}_sharing"), credentials, rid)
    assert refreshed.access_token != enabled.access_token
    new_id = refreshed.share_passwords[0].id
    run(getattr(t, f"delete_{resource}_sharing_password"), credentials, rid, new_id)
    assert run(get, credentials, rid).share_passwords == []
    with pytest.raises(NotFoundError):
        run(getattr(t, f"delete_{resource}_sharing_password"), credentials, rid, new_id)


def test_sharing_errors(credentials, seeded, emulator) -> None:
    with pytest.raises(NotFoundError, match="Insight not found"):
        run(t.get_insight_sharing, credentials, 99)
    emulator.configure(advanced_permissions=False)
    with pytest.raises(FeatureNotAvailableError, match="Advanced Permissions"):
        run(t.update_insight_sharing, credentials, 1, password_required=True)


def test_project_secret_api_key_tasks(credentials, emulator) -> None:
    key = run(t.create_project_secret_api_key, credentials, "backend", ["feature_flag:read"])
    assert key.value is not None and key.value.get_secret_value().startswith("phs_")
    assert [k.label for k in run(t.list_project_secret_api_keys, credentials)] == ["backend"]
    assert run(t.get_project_secret_api_key, credentials, key.id).value is None
    assert run(t.update_project_secret_api_key, credentials, key.id,
               label="backend-2").label == "backend-2"
    rolled = run(t.roll_project_secret_api_key, credentials, key.id)
    with credentials.get_client() as posthog:
        assert not posthog.check_project_secret_api_key(key.value)
        assert posthog.check_project_secret_api_key(rolled.value)
    run(t.delete_project_secret_api_key, credentials, key.id)
    with pytest.raises(NotFoundError):
        run(t.get_project_secret_api_key, credentials, key.id)


def test_project_secret_api_key_errors(credentials, emulator) -> None:
    run(t.create_project_secret_api_key, credentials, "dup", ["feature_flag:read"])
    with pytest.raises(ValidationError, match="already exists"):
        run(t.create_project_secret_api_key, credentials, "dup", ["feature_flag:read"])
    with pytest.raises(ValidationError) as info:
        run(t.create_project_secret_api_key, credentials, "x", ["group:read"])
    assert info.value.attr == "scopes"
    emulator.set_faults(schedule=[{"operation": "roll_project_secret_api_key",
                                   "fault": "lost_response"}])
    key = run(t.list_project_secret_api_keys, credentials)[0]
    with pytest.raises(OutcomeUnknownError):
        run(t.roll_project_secret_api_key, credentials, key.id)


def test_replace_project_secret_api_key_sets_label_and_scopes(credentials, emulator) -> None:
    key = run(t.create_project_secret_api_key, credentials, "edge", ["feature_flag:read"])
    run(t.create_project_secret_api_key, credentials, "taken", ["feature_flag:read"])
    replaced = run(t.replace_project_secret_api_key, credentials, key.id, "edge-2",
                   ["feature_flag:read", "endpoint:read"])
    assert (replaced.label, replaced.scopes) == ("edge-2", ["feature_flag:read",
                                                           "endpoint:read"])
    live = run(t.get_project_secret_api_key, credentials, key.id)
    assert (live.label, live.scopes) == ("edge-2", ["feature_flag:read", "endpoint:read"])
    # A label another key holds is refused before sending (PostHog would answer 500).
    with pytest.raises(InvalidInputError) as info:
        run(t.replace_project_secret_api_key, credentials, key.id, "taken",
            ["feature_flag:read"])
    assert info.value.field == "label"
    assert run(t.get_project_secret_api_key, credentials, key.id).label == "edge-2"
    assert not [r for r in emulator.read_requests()
                if r["operation"] == "replace_project_secret_api_key" and r["status"] != 200]


def test_check_project_secret_api_key_the_way_consumers_use_keys(credentials, emulator) -> None:
    key = run(t.create_project_secret_api_key, credentials, "flags", ["feature_flag:read"])
    assert run(t.check_project_secret_api_key, credentials, key.value) is True
    # It asks the flags service, as PostHog's SDKs do, with the project's token.
    [asked] = [r for r in emulator.read_requests() if r["path"] == "/flags/definitions"]
    assert asked["status"] == 200
    rolled = run(t.roll_project_secret_api_key, credentials, key.id)
    assert run(t.check_project_secret_api_key, credentials, key.value) is False
    assert run(t.check_project_secret_api_key, credentials, rolled.value) is True
    # Quota-limited: PostHog answers 402 only after the key authenticated.
    emulator.configure(quota_limited=True)
    assert run(t.check_project_secret_api_key, credentials, rolled.value) is True
    assert run(t.check_project_secret_api_key, credentials, key.value) is False
    emulator.configure(quota_limited=False)
    # A key without feature_flag:read cannot load definitions: PostHog answers 401.
    other = run(t.create_project_secret_api_key, credentials, "endpoints", ["endpoint:read"])
    assert run(t.check_project_secret_api_key, credentials, other.value) is False


def test_check_falls_back_to_django_local_evaluation_on_older_posthog(credentials,
                                                                      emulator) -> None:
    key = run(t.create_project_secret_api_key, credentials, "flags", ["feature_flag:read"])
    with credentials.get_client() as posthog:
        # An older self-hosted PostHog: no flags service route at the host, Django's
        # local_evaluation still there.
        posthog.ingestion_host = f"{emulator.url}/no-flags-service"
        emulator.configure(legacy_local_evaluation=True)
        assert posthog.check_project_secret_api_key(key.value) is True
        emulator.configure(quota_limited=True)
        assert posthog.check_project_secret_api_key(key.value) is True
        rolled = posthog.roll_project_secret_api_key(key.id)
        assert posthog.check_project_secret_api_key(key.value) is False
        assert posthog.check_project_secret_api_key(rolled.value) is True
    asked = {r["path"] for r in emulator.read_requests()
             if r["operation"] == "local_evaluation"}
    assert asked == {"/api/projects/1/feature_flags/local_evaluation/"}


def test_server_clock_follows_posthog_not_the_local_clock(credentials, emulator) -> None:
    from datetime import datetime, timedelta

    emulator.admin("POST", "clock", {"advance": 3 * 3600})
    with credentials.get_client() as posthog:
        posthog.list_project_secret_api_keys()
        ahead = posthog.server_now() - datetime.now(UTC)
    assert timedelta(hours=3) - timedelta(seconds=5) < ahead < timedelta(hours=3, seconds=5)


def test_server_error_after_retries_is_typed(credentials, seeded, emulator) -> None:
    emulator.set_faults(kinds=["500"], rate=1.0)
    client = credentials.model_copy(update={"max_attempts": 1})
    with pytest.raises(ServerError):
        run(t.find_group.with_options(retries=0), client, 0, "c0")


def test_block_credentials_project_override(credentials: PostHogCredentials, emulator) -> None:
    emulator.seed({"projects": [{"id": 2}], "groups": [
        {"project": 2, "group_type_index": 0, "group_key": "only-in-2"}]})
    assert run(t.find_group, credentials, 0, "only-in-2", project_id=2).group_key == "only-in-2"
    with pytest.raises(NotFoundError):
        run(t.find_group, credentials, 0, "only-in-2")
