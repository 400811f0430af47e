"""Overlap rotation against the emulator: a successor stored while the old key keeps
working, retirement only once PostHog's own `last_used_at` stamps show consumers moved
(the emulator's clock crosses the hours), refusals before any write, and convergence after
a run stopped at any step (the pairing lives in PostHog's labels). The deadline, with
PostHog's SDK as the consumer that never reloads, is in tests/test_key_consumers.py."""

from __future__ import annotations

import pytest
from prefect.blocks.system import Secret
from prefect.exceptions import ParameterTypeError

from prefect_posthog.client import InvalidInputError
from prefect_posthog.flows import KeySelector, rotate_project_secret_api_keys
from tests.helpers import authenticates

BLOCK = "posthog-psak-flags-app"
HOUR = 3600


def keys(emulator) -> dict[str, dict]:
    return {k["label"]: k for k in emulator.read_state()["project_secret_api_keys"].values()}


def writes(emulator, since: int = 0) -> list[dict]:
    return [r for r in emulator.read_requests(since) if r["operation"] in (
        "roll_project_secret_api_key", "create_project_secret_api_key",
        "delete_project_secret_api_key", "update_project_secret_api_key")]


def checks(emulator, since: int = 0) -> list[dict]:
    return [r for r in emulator.read_requests(since) if r["path"] == "/flags/definitions"]


def last_seq(emulator) -> int:
    log = emulator.read_requests()
    return log[-1]["seq"] if log else 0


def advance(emulator, seconds: float) -> None:
    emulator.admin("POST", "clock", {"advance": seconds})


def overlap(credentials, **options):
    options.setdefault("selector", KeySelector(labels=["flags-app"]))
    options.setdefault("settle_seconds", 0)
    return rotate_project_secret_api_keys(credentials, strategy="overlap", **options)


@pytest.fixture
def old_value(emulator) -> str:
    """A 40-day-old key labelled flags-app whose value consumers read from its block."""
    seeded = emulator.seed({"project_secret_api_keys": [
        {"label": "flags-app", "created_days_ago": 40,
         "scopes": ["feature_flag:read", "endpoint:read"]}]})
    value = seeded["project_secret_api_keys"][0]["value"]
    Secret(value=value).save(BLOCK, overwrite=True)
    return value


def test_overlap_stores_a_successor_while_the_old_key_keeps_working(credentials, emulator,
                                                                    old_value) -> None:
    old = keys(emulator)["flags-app"]
    report = overlap(credentials, selector=KeySelector(label_pattern="flags-*",
                                                       older_than_days=30))
    [outcome] = report.outcomes
    successor = keys(emulator)["flags-app~next"]
    assert (outcome.status, outcome.action) == ("rotated", "start_overlap")
    assert (outcome.id, outcome.old_key_id, outcome.label) == (successor["id"], old["id"],
                                                               "flags-app")
    assert successor["scopes"] == old["scopes"]
    # The job checked the successor it stored (its own stamp), never the old key.
    assert successor["last_used_at"] is not None
    assert old["last_used_at"] is None and keys(emulator)["flags-app"]["last_used_at"] is None
    stored = Secret.load(BLOCK).get()
    assert stored != old_value and authenticates(emulator.url, stored)
    assert authenticates(emulator.url, old_value)  # nobody is cut off
    assert outcome.new_value_works and "old key keeps working" in outcome.verification

    # The next run finds the overlap in PostHog and waits: no write, no check of either key.
    since = last_seq(emulator)
    [waiting] = overlap(credentials).outcomes
    assert (waiting.status, waiting.action) == ("overlapping", "wait")
    assert "consumers use it: not seen yet" in waiting.detail
    assert writes(emulator, since) == [] and checks(emulator, since) == []


def test_the_old_key_retires_once_consumers_moved_and_it_is_idle(credentials, emulator,
                                                                 old_value) -> None:
    assert authenticates(emulator.url, old_value)  # a consumer uses the old key now (stamp)
    overlap(credentials)
    stored = Secret.load(BLOCK).get()
    advance(emulator, 1.5 * HOUR)
    assert authenticates(emulator.url, stored)  # consumers moved: PostHog stamps the successor
    [early] = overlap(credentials).outcomes
    assert early.status == "overlapping" and "consumers use it: yes" in early.detail
    assert "2 h idle needed" in early.detail  # the old key was used 1.5 h ago
    assert "flags-app" in keys(emulator)

    advance(emulator, 1 * HOUR)
    since = last_seq(emulator)
    [retired] = overlap(credentials).outcomes
    assert (retired.status, retired.action) == ("retired", "retire")
    assert set(keys(emulator)) == {"flags-app"}  # old key deleted, successor relabelled
    assert keys(emulator)["flags-app"]["id"] == retired.id
    assert Secret.load(BLOCK).get() == stored and authenticates(emulator.url, stored)
    assert not authenticates(emulator.url, old_value)
    delete, relabel = [r["operation"] for r in writes(emulator, since)]
    assert (delete, relabel) == ("delete_project_secret_api_key",
                                 "update_project_secret_api_key")  # delete first
    assert "old key deleted" in retired.verification


def test_overlap_refusals_name_the_field_before_any_write(credentials, emulator) -> None:
    emulator.seed({"project_secret_api_keys": [
        {"label": "x" * 36}, *({"label": f"k{i:02d}"} for i in range(48))]})
    cases = [
        ({"selector": KeySelector(labels=["x" * 36])}, "strategy", "over PostHog's 40"),
        ({"selector": KeySelector(labels=["k00", "k01"])}, "strategy", "cap of 50"),
        ({"selector": KeySelector(labels=["k00"]),
          "secret_block_name_template": "psak-{label}-{id}"}, "secret_block_name_template",
         "{label} only"),
        ({"selector": KeySelector(labels=["k00"]), "store": lambda key, value: "vault"},
         "store", "cannot be read back"),
    ]
    for options, field, text in cases:
        with pytest.raises(InvalidInputError, match=text) as info:
            overlap(credentials, **options)
        assert info.value.field == field
    with pytest.raises(ParameterTypeError, match="old_key_idle_hours"):
        overlap(credentials, old_key_idle_hours=0.5)
    assert writes(emulator) == []
    assert overlap(credentials, selector=KeySelector(labels=["k00"])).outcomes[0].status == \
        "rotated"  # 49 keys + 1 successor is within the cap


def test_a_run_stopped_between_create_and_store_converges(credentials, emulator,
                                                          old_value) -> None:
    # As a run killed after its create landed: the successor exists, its value nowhere.
    with credentials.get_client() as posthog:
        posthog.create_project_secret_api_key("flags-app~next", ["feature_flag:read"])
    # The shipped weekly schedule's criteria: the key is young now, the pair is found anyway.
    [outcome] = overlap(credentials, selector=KeySelector(label_pattern="flags-*",
                                                          older_than_days=7)).outcomes
    assert (outcome.status, outcome.action) == ("rotated", "store_successor")
    state = keys(emulator)
    assert set(state) == {"flags-app", "flags-app~next"}  # never two successors
    assert state["flags-app~next"]["last_rolled_at"] is not None  # rolled to learn a value
    stored = Secret.load(BLOCK).get()
    assert authenticates(emulator.url, stored) and authenticates(emulator.url, old_value)


def test_lost_and_late_creates_never_make_two_successors(credentials, emulator,
                                                         old_value) -> None:
    emulator.set_faults(schedule=[{"operation": "create_project_secret_api_key",
                                   "fault": "lost_response"}])
    [outcome] = overlap(credentials, settle_seconds=0.2).outcomes
    assert outcome.status == "rotated" and outcome.reconciled
    assert set(keys(emulator)) == {"flags-app", "flags-app~next"}
    assert authenticates(emulator.url, Secret.load(BLOCK).get())

    # A create applied after the client gave up on it (and created again) is refused by
    # PostHog's unique labels: still one successor, and the stored one is live.
    emulator.seed({"project_secret_api_keys": [{"label": "flags-late", "created_days_ago": 40}]})
    impatient = credentials.model_copy(update={"timeout_seconds": 1.0})
    emulator.set_faults(late_seconds=2.5, schedule=[{"operation": "create_project_secret_api_key",
                                                     "fault": "late"}])
    [late] = rotate_project_secret_api_keys(impatient, KeySelector(labels=["flags-late"]),
                                            strategy="overlap", settle_seconds=1.0).outcomes
    assert late.status == "rotated" and late.reconciled
    assert [label for label in keys(emulator) if label.startswith("flags-late")] == [
        "flags-late", "flags-late~next"]
    assert authenticates(emulator.url, Secret.load("posthog-psak-flags-late").get())


def test_a_run_stopped_between_delete_and_relabel_converges(credentials, emulator,
                                                            old_value) -> None:
    overlap(credentials)
    with credentials.get_client() as posthog:  # as a run killed after deleting the old key
        posthog.delete_project_secret_api_key(keys(emulator)["flags-app"]["id"])
    [outcome] = overlap(credentials).outcomes
    assert outcome.status == "retired" and set(keys(emulator)) == {"flags-app"}
    assert authenticates(emulator.url, Secret.load(BLOCK).get())


def test_a_roll_of_a_key_in_overlap_ends_the_overlap(credentials, emulator, old_value) -> None:
    overlap(credentials)
    successor_value = Secret.load(BLOCK).get()
    [outcome] = rotate_project_secret_api_keys(credentials, KeySelector(labels=["flags-app"]),
                                               settle_seconds=0).outcomes
    assert (outcome.status, outcome.action) == ("rotated", "end_overlap")
    assert set(keys(emulator)) == {"flags-app"}
    stored = Secret.load(BLOCK).get()
    assert authenticates(emulator.url, stored) and outcome.old_value_revoked
    assert not authenticates(emulator.url, successor_value)
    assert not authenticates(emulator.url, old_value)  # every value anyone held is dead
