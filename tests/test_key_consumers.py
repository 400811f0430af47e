"""Consumers as PostHog users run them: PostHog's own SDK evaluating flags locally with the
secret key it reads from the Secret block, through rotations. With an overlap rotation a
consumer that reloads the block never sees a failed call, through the swap and the old
key's retirement (the emulator's clock crosses the hours, so PostHog's hourly
`last_used_at` stamps move as they would); a roll cuts it off until it reloads; a consumer
that never reloads keeps the old key from being retired, and past the deadline the run
says so and notifies."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from posthog import Posthog
from prefect.blocks.system import Secret

from prefect_posthog.flows import JobFailedError, KeySelector, rotate_project_secret_api_keys
from tests.helpers import PROJECT_TOKEN, WebhookReceiver, until

BLOCK = "posthog-psak-flags-app"
FLAG = "new-checkout"
HOUR = 3600


class Consumer(threading.Thread):
    """A backend evaluating `FLAG` locally every 50 ms with `posthog.Posthog(secret_key=…)`,
    reading its key from the Secret block every `reload_seconds` (`None`: never) and making
    a new client when the value changed. A call whose flag is not there (the SDK clears its
    flags when a poll is refused) is a failure."""

    def __init__(self, url: str, reload_seconds: float | None = 2.0) -> None:
        super().__init__(daemon=True)
        self.url, self.reload_seconds = url, reload_seconds
        self.calls = self.failures = self.reloads = 0
        self.pause_reloads = threading.Event()
        self._halt = threading.Event()
        self.value = Secret.load(BLOCK).get()
        self.sdk = self._client(self.value)

    def _client(self, value: str) -> Posthog:
        sdk = Posthog(project_api_key=PROJECT_TOKEN, secret_key=value, host=self.url,
                      poll_interval=0.5, feature_flags_request_timeout_seconds=10)
        sdk.load_feature_flags()
        return sdk

    def _reload(self) -> None:
        value = Secret.load(BLOCK).get()
        if value != self.value:
            old, self.sdk, self.value = self.sdk, self._client(value), value
            old.shutdown()
            self.reloads += 1

    def run(self) -> None:
        last = time.monotonic()
        while not self._halt.is_set():
            if self.reload_seconds is not None and not self.pause_reloads.is_set() and \
                    time.monotonic() - last >= self.reload_seconds:
                self._reload()
                last = time.monotonic()
            enabled = self.sdk.get_feature_flag(FLAG, "user-1", only_evaluate_locally=True,
                                                send_feature_flag_events=False)
            self.calls += 1
            self.failures += enabled is not True
            time.sleep(0.05)

    def working(self, calls: int = 5) -> bool:
        """Whether `calls` more calls succeed from now on."""
        start_calls, start_failures = self.calls, self.failures
        assert until(lambda: self.calls >= start_calls + calls)
        return self.failures == start_failures

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)
        self.sdk.shutdown()


def keys(emulator) -> dict[str, dict]:
    return {k["label"]: k for k in emulator.read_state()["project_secret_api_keys"].values()}


def advance(emulator, seconds: float) -> None:
    emulator.admin("POST", "clock", {"advance": seconds})


def overlap(credentials, **options) -> Any:
    return rotate_project_secret_api_keys(credentials, KeySelector(labels=["flags-app"]),
                                          strategy="overlap", settle_seconds=0, **options)


def stamped_again(emulator, label: str, before: str | None) -> bool:
    """Whether PostHog stamped the key's `last_used_at` since `before` (a consumer used it)."""
    return keys(emulator).get(label, {}).get("last_used_at") not in (None, before)


@pytest.fixture
def consumers(emulator, caplog) -> Iterator[Callable[..., Consumer]]:
    """Start consumers of flags-app (a 40-day-old key whose block holds its value)."""
    caplog.set_level(logging.WARNING, logger="posthog")
    seeded = emulator.seed({
        "feature_flags": [{"key": FLAG, "filters": {
            "groups": [{"properties": [], "rollout_percentage": 100}]}}],
        "project_secret_api_keys": [{"label": "flags-app", "created_days_ago": 40,
                                     "scopes": ["feature_flag:read"]}]})
    Secret(value=seeded["project_secret_api_keys"][0]["value"]).save(BLOCK, overwrite=True)
    started: list[Consumer] = []

    def start(reload_seconds: float | None = 2.0) -> Consumer:
        consumer = Consumer(emulator.url, reload_seconds)
        consumer.start()
        started.append(consumer)
        assert consumer.working()
        return consumer

    yield start
    for consumer in started:
        consumer.stop()


def test_a_reloading_consumer_never_fails_through_an_overlap_and_its_retirement(
        credentials, emulator, consumers, caplog) -> None:
    consumer = consumers()
    assert until(lambda: keys(emulator)["flags-app"]["last_used_at"])  # its first use
    [started] = overlap(credentials).outcomes
    assert (started.status, started.action) == ("rotated", "start_overlap")
    assert until(lambda: consumer.reloads == 1) and consumer.working()
    job_stamp = keys(emulator)["flags-app~next"]["last_used_at"]  # the job's own check

    advance(emulator, 2.5 * HOUR)  # PostHog's stamps are hourly: cross the hours
    assert until(lambda: stamped_again(emulator, "flags-app~next", job_stamp))
    [retired] = overlap(credentials).outcomes
    assert retired.status == "retired", retired
    live = keys(emulator)
    assert set(live) == {"flags-app"} and live["flags-app"]["id"] == started.id
    assert consumer.working(20)  # the same value, under its old label
    assert consumer.failures == 0 and consumer.reloads == 1
    assert not [r.getMessage() for r in caplog.records  # no poll failed
                if r.name == "posthog" and r.levelno >= logging.ERROR]


def test_a_roll_cuts_a_consumer_off_until_it_reloads(credentials, emulator,
                                                     consumers) -> None:
    consumer = consumers()
    consumer.pause_reloads.set()  # the roll lands between two of its reloads
    [rolled] = rotate_project_secret_api_keys(credentials, KeySelector(labels=["flags-app"]),
                                              settle_seconds=0).outcomes
    assert rolled.status == "rotated"
    assert until(lambda: consumer.failures > 0)  # the outage the overlap avoids
    consumer.pause_reloads.clear()
    assert until(lambda: consumer.reloads == 1) and until(consumer.working)


def test_a_consumer_that_never_reloads_keeps_the_old_key_alive(credentials, emulator,
                                                               consumers) -> None:
    moved, stuck = consumers(), consumers(reload_seconds=None)
    overlap(credentials)
    assert until(lambda: moved.reloads == 1)
    stamps = {label: keys(emulator)[label]["last_used_at"]
              for label in ("flags-app", "flags-app~next")}
    advance(emulator, 2.5 * HOUR)
    assert until(lambda: all(stamped_again(emulator, label, stamp)
                             for label, stamp in stamps.items()))
    [waiting] = overlap(credentials).outcomes
    assert waiting.status == "overlapping" and "consumers use it: yes" in waiting.detail
    assert "flags-app" in keys(emulator)  # still used: not retired

    old_stamp = keys(emulator)["flags-app"]["last_used_at"]
    advance(emulator, 7 * 24 * HOUR)  # past retire_deadline_hours (7 days)
    assert until(lambda: stamped_again(emulator, "flags-app", old_stamp))
    receiver = WebhookReceiver()
    try:
        with pytest.raises(JobFailedError):
            overlap(credentials, notification=receiver.block())
    finally:
        receiver.close()
    [message] = receiver.received
    assert "NOT retired" in message["body"] and "consumers still use the old key" in \
        message["body"]
    assert stuck.value[4:] not in json.dumps(message) and moved.value[4:] not in json.dumps(
        message)
    assert set(keys(emulator)) == {"flags-app", "flags-app~next"}  # nothing deleted
    assert stuck.working() and stuck.failures == 0 and stuck.reloads == 0
    assert moved.failures == 0
