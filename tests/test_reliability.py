"""Reliability: faults, lost responses, bad input and a shared budget, all against the
emulator. Each test checks the emulator's final state, not just what the library says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
from prefect.blocks.system import Secret
from prefect.settings import PREFECT_API_URL
from pydantic import SecretStr
from pydantic import ValidationError as PydanticValidationError

from prefect_posthog import PostHogCredentials
from prefect_posthog import tasks as t
from prefect_posthog.client import InvalidInputError, OutcomeUnknownError, PostHogAPIError
from prefect_posthog.emulator import Emulator
from prefect_posthog.flows import (
    GroupPropertyUpdate,
    KeySelector,
    SharingTarget,
    bulk_update_group_properties,
    reset_sharing_passwords,
    rotate_project_secret_api_keys,
)
from tests.helpers import ADMIN_KEY


def groups(emulator: Emulator) -> dict[str, dict]:
    return {json.loads(k)[2]: g["group_properties"]
            for k, g in emulator.read_state()["groups"].items()}


def test_2000_writes_with_10_percent_faults(credentials, emulator) -> None:
    n = 500  # 500 groups x (3 sets + 1 unset) = 2,000 writes
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": f"g{i:03d}",
                               "group_properties": {"old": i}} for i in range(n)]})
    emulator.set_faults(kinds=["500", "502", "503", "429", "reset", "slow"], rate=0.10,
                        seed=1234, slow_seconds=1.2)
    rows = [GroupPropertyUpdate(group_type_index=0, group_key=f"g{i:03d}",
                                set={"a": i, "b": f"v{i}", "c": i % 2 == 0}, unset=["old"])
            for i in range(n)]
    tough = credentials.model_copy(update={"timeout_seconds": 1.0, "max_attempts": 12})
    report = bulk_update_group_properties(tough, updates=rows, max_concurrency=8)
    assert (report.total, report.applied, report.failed) == (n, n, 0)
    assert report.writes == 4 * n
    final = groups(emulator)
    assert all(final[f"g{i:03d}"] == {"a": i, "b": f"v{i}", "c": i % 2 == 0} for i in range(n))
    log = emulator.read_requests()
    faults = Counter(r["fault"] for r in log if r["fault"])
    assert sum(faults.values()) > 150 and len(faults) == 6  # the faults really happened
    # The non-idempotent delete took effect exactly once per group.
    applied_deletes = Counter(r["path"] for r in log if r["operation"] ==
                              "delete_group_property" and r["status"] == 200)
    assert sum(applied_deletes.values()) == n


def test_lost_refresh_response_is_reconciled(credentials, emulator) -> None:
    emulator.seed({"insights": [{"id": 1}], "sharing": [
        {"resource": "insight", "id": 1, "enabled": True, "password_required": True,
         "passwords": ["old-password-x"]}]})
    emulator.set_faults(schedule=[{"operation": "refresh_sharing", "fault": "lost_response"}])
    report = reset_sharing_passwords(credentials, [SharingTarget(resource="insight", id="1")],
                                     refresh_link=True, settle_seconds=0.2)
    outcome = report.targets[0]
    assert outcome.status == "reset" and outcome.reconciled and outcome.link_refreshed
    refreshes = [r for r in emulator.read_requests() if r["operation"] == "refresh_sharing"]
    assert len(refreshes) == 1  # the lost refresh was recognised, not repeated
    state = emulator.read_state()
    live = [c for c in state["sharing"].values() if c["expires_at"] is None]
    assert len(live) == 1 and outcome.share_url.endswith(live[0]["access_token"])
    token = live[0]["access_token"]
    password = Secret.load("posthog-share-insight-1").get()
    assert httpx.post(f"{emulator.url}/shared/{token}", json={"password": password}
                      ).status_code == 200
    assert httpx.post(f"{emulator.url}/shared/{token}", json={"password": "old-password-x"}
                      ).status_code == 401


def test_lost_key_create_is_recovered_by_label_and_roll(credentials, emulator) -> None:
    emulator.set_faults(schedule=[{"operation": "create_project_secret_api_key",
                                   "fault": "lost_response"}])
    with pytest.raises(OutcomeUnknownError):
        t.create_project_secret_api_key.fn(credentials, "backend", ["feature_flag:read"])
    # The documented recovery: the key exists once (no stray), roll it to get a value.
    keys = [k for k in t.list_project_secret_api_keys.fn(credentials) if k.label == "backend"]
    assert len(keys) == 1
    report = rotate_project_secret_api_keys(credentials, KeySelector(labels=["backend"]))
    assert report.outcomes[0].new_value_works
    assert len(emulator.read_state()["project_secret_api_keys"]) == 1


def test_lost_roll_twice_still_ends_with_one_working_stored_value(credentials,
                                                                  emulator) -> None:
    emulator.seed({"project_secret_api_keys": [{"label": "k"}]})
    emulator.set_faults(schedule=[{"operation": "roll_project_secret_api_key",
                                   "fault": "lost_response", "count": 2}])
    report = rotate_project_secret_api_keys(credentials, KeySelector(labels=["k"]),
                                            settle_seconds=0.2)
    assert report.outcomes[0].status == "rotated" and report.outcomes[0].new_value_works
    with credentials.get_client() as posthog:
        assert posthog.check_project_secret_api_key(Secret.load("posthog-psak-k").get())


# -- bad input: a typed error naming the field, and nothing applied ----------------------------

def _creds(**changes) -> dict:
    return {"personal_api_key": "phx_k", **changes}


BAD_BLOCK = [
    ({"host": "http://posthog.example.com"}, "host"),
    ({"host": "ftp://x"}, "host"),
    ({"personal_api_key": ""}, "personal_api_key"),
    ({"project_id": -3}, "project_id"),
    ({"rate_limit": "9/fortnight"}, "rate_limit"),
    ({"max_attempts": 0}, "max_attempts"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_BLOCK)
def test_bad_block_input(changes, field) -> None:
    with pytest.raises(PydanticValidationError) as info:
        PostHogCredentials(**_creds(**changes))
    assert info.value.errors()[0]["loc"][0] == field


def _task_cases(c: PostHogCredentials) -> list:
    one = [SharingTarget(resource="insight", id="1")]
    return [
        (lambda: t.find_group.fn(c, 9, "acme"), "group_type_index"),
        (lambda: t.find_group.fn(c, 0, ""), "group_key"),
        (lambda: t.update_group_property.fn(c, 0, "acme", "", 1), "key"),
        (lambda: t.update_group_property.fn(c, 0, "acme", "plan", None), "value"),
        (lambda: t.delete_group_property.fn(c, 0, "acme", ""), "key"),
        (lambda: t.delete_group_property.fn(c, 0, "acme", "never"), "$unset"),
        (lambda: t.find_group.fn(c, 0, "unknown-group"), None),
        (lambda: t.create_group.fn(c, 0, "acme"), "detail"),
        (lambda: t.list_related_groups.fn(c, ""), "id"),
        (lambda: t.list_group_property_values.fn(c, 0, ""), "key"),
        (lambda: t.get_group_activity.fn(c, 0, "acme", page=0), "page"),
        (lambda: t.get_insight_sharing.fn(c, 404), None),
        (lambda: t.get_insight_sharing.fn(c, "x1"), "insight_id"),
        (lambda: t.update_insight_sharing.fn(c, 1), "enabled"),
        (lambda: t.update_insight_sharing.fn(c, 1, settings="dark"), "settings"),
        (lambda: t.create_insight_sharing_password.fn(c, 1, raw_password=SecretStr("short")),
         "raw_password"),
        (lambda: t.create_insight_sharing_password.fn(c, 1, note="n" * 101), "note"),
        (lambda: t.delete_insight_sharing_password.fn(c, 1, 99999), None),
        (lambda: t.create_project_secret_api_key.fn(c, "", ["feature_flag:read"]), "label"),
        (lambda: t.create_project_secret_api_key.fn(c, "l" * 41, ["feature_flag:read"]),
         "label"),
        (lambda: t.create_project_secret_api_key.fn(c, "ok", []), "scopes"),
        (lambda: t.create_project_secret_api_key.fn(c, "ok", ["*"]), "scopes"),
        (lambda: t.create_project_secret_api_key.fn(c, "ok", ["group:write"]), "scopes"),
        (lambda: t.create_project_secret_api_key.fn(c, "existing", ["feature_flag:read"]),
         None),
        (lambda: t.update_project_secret_api_key.fn(c, "nope-id", label="x"), None),
        (lambda: t.get_project_secret_api_key.fn(c, ""), "key_id"),
        (lambda: t.roll_project_secret_api_key.fn(c, "missing-id"), None),
        (lambda: t.find_group.fn("phx_raw_key", 0, "acme"), "credentials"),
        (lambda: t.find_group.fn(c, 0, "acme", project_id=77), None),
        (lambda: bulk_update_group_properties(c, updates=None, source_path=None),
         "updates"),
        (lambda: bulk_update_group_properties(c, source_path="/no/such/file.jsonl"),
         "source_path"),
        (lambda: bulk_update_group_properties(c, source_path=__file__), "source_path"),
        (lambda: rotate_project_secret_api_keys("no-such-block", KeySelector(all_keys=True)),
         "credentials"),
        (lambda: reset_sharing_passwords(c, one, notification="not-a-slug"), "notification"),
        (lambda: reset_sharing_passwords(c, one, new_password="hunter2-typed-inline"),
         "new_password"),
    ]


def test_bad_input_matrix(credentials, emulator) -> None:
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": "acme",
                               "group_properties": {"plan": "free"}}],
                   "insights": [{"id": 1}],
                   "sharing": [{"resource": "insight", "id": 1, "password_required": True}],
                   "project_secret_api_keys": [{"label": "existing"}]})
    before = emulator.read_state()
    cases = _task_cases(credentials)
    assert len(cases) + len(BAD_BLOCK) >= 30
    for index, (call, field) in enumerate(cases):
        with pytest.raises((InvalidInputError, PostHogAPIError)) as info:
            call()
        err = info.value
        named = getattr(err, "field", None) or getattr(err, "attr", None)
        assert named == field or (field is None and isinstance(err, PostHogAPIError)), (
            index, str(err))
        assert "hunter2" not in str(err)
    after = emulator.read_state()
    for part in ("groups", "sharing", "share_passwords", "project_secret_api_keys"):
        assert after[part] == before[part], part


# -- one key's budget shared by two flows in two processes ---------------------------------------

WORKER = """
import sys
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect_posthog import PostHogCredentials
from prefect_posthog.flows import GroupPropertyUpdate, bulk_update_group_properties
url, key, offset = sys.argv[1], sys.argv[2], int(sys.argv[3])
creds = PostHogCredentials(host=url, personal_api_key=key, project_id=1, rate_limit="40/5s")
rows = [GroupPropertyUpdate(group_type_index=0, group_key=f"s{i:03d}", set={"w": offset})
        for i in range(offset, offset + 40)]
with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
    report = bulk_update_group_properties(creds, updates=rows, max_concurrency=4,
                                          concurrency_limit_name="posthog-key-budget")
print("APPLIED", report.applied)
"""


def test_two_flows_share_one_key_budget(emulator, tmp_path: Path) -> None:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    async def create_limit() -> None:
        async with get_client() as client:
            await client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                name="posthog-key-budget", limit=4, slot_decay_per_second=4.0))

    asyncio.run(create_limit())
    # PostHog's window scaled down: 40 per 5 s for the key. Each process alone believes it
    # may use all of it; only the shared global limit (4/s, half of 8/s, a margin for
    # requests that bunch up on a loaded machine) keeps them under it.
    emulator.configure(rate_limit="40/5s")
    emulator.seed({"groups": [{"group_type_index": 0, "group_key": f"s{i:03d}"}
                              for i in range(80)]})
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING"}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, emulator.url, ADMIN_KEY, str(o)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for o in (0, 40)]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
        assert "APPLIED 40" in out
    statuses = Counter(r["status"] for r in emulator.read_requests())
    assert statuses.get(429, 0) == 0, statuses
    assert all(groups(emulator)[f"s{i:03d}"] == {"w": 0 if i < 40 else 40} for i in range(80))
