"""Shared fixtures: one Prefect test server per session, one emulator per session."""

from __future__ import annotations

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")

from collections.abc import Iterator

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from prefect_posthog import PostHogCredentials
from prefect_posthog.emulator import Emulator

# Recognisable canaries: no test may ever find these in logs, results or messages.
ADMIN_KEY = "phx_CANARY_admin_key_5e1f0c"
READ_ONLY_KEY = "phx_CANARY_readonly_key_77aa"


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    # Sync flows otherwise wait ~1 s on the heartbeat thread at exit.
    with prefect_test_harness(server_startup_timeout=120), \
            temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Emulator]:
    with Emulator(personal_api_keys={ADMIN_KEY: None}, rate_limit="") as emulator:
        yield emulator


def forget_stored_secrets() -> None:
    """Delete every Secret block: what a test stored belongs to the PostHog it ran against,
    and a later test's fresh emulator would see it as a dead stored value (drift)."""
    with get_client(sync_client=True) as client:
        for document in client.read_block_documents_by_type("secret", include_secrets=False):
            client.delete_block_document(document.id)


@pytest.fixture
def emulator(emulator_server: Emulator) -> Emulator:
    """The session emulator, reset to an empty project 1 with one admin key (and no Secret
    blocks left from earlier tests)."""
    forget_stored_secrets()
    emulator_server.reset()
    emulator_server.configure(advanced_permissions=True, property_definitions_route=True,
                              rate_limit="")
    emulator_server.seed({"personal_api_keys": [
        {"value": ADMIN_KEY}, {"value": READ_ONLY_KEY, "scopes": ["group:read"]}]})
    return emulator_server


@pytest.fixture
def credentials(emulator: Emulator) -> PostHogCredentials:
    return PostHogCredentials(host=emulator.url, personal_api_key=ADMIN_KEY, project_id=1,
                              rate_limit="", timeout_seconds=5)


@pytest.fixture
def client(credentials: PostHogCredentials):
    with credentials.get_client(sleep=lambda _s: None) as posthog:  # retries need not wait
        yield posthog
