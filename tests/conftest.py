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
from tests.helpers import ADMIN_KEY, READ_ONLY_KEY


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


class LoopbackS3:
    """moto's standalone S3 server on a free loopback port, and the environment that
    points botocore (and so s3fs) at it, as a deployment's worker would have it."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        # Explicit credentials and no instance metadata: botocore never looks further.
        self.env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": self.url,
                    "AWS_EC2_METADATA_DISABLED": "true"}

    def put(self, path: str, data: bytes) -> str:
        """Store `data` at `bucket/key` (the bucket is created); return its s3:// URL."""
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        bucket, key = path.split("/", 1)
        s3.create_bucket(Bucket=bucket)  # answers 200 when it exists already
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        return f"s3://{path}"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LoopbackS3]:
    server = LoopbackS3()
    yield server
    server.server.stop()


@pytest.fixture
def s3(s3_server: LoopbackS3, monkeypatch: pytest.MonkeyPatch) -> LoopbackS3:
    """The loopback S3, with this process's environment pointing at it."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server
