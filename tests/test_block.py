"""The PostHogCredentials block: Prefect's standard suite, validation, save/load, client."""

from __future__ import annotations

import json

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import SecretStr
from pydantic import ValidationError as PydanticValidationError

from prefect_posthog import PostHogCredentials
from prefect_posthog.client import PostHogClient
from tests.helpers import ADMIN_KEY


class TestPostHogCredentialsStandards(BlockStandardTestSuite):
    @pytest.fixture
    def block(self) -> type[Block]:
        return PostHogCredentials

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        # Offline: the standard test downloads the logo; check it is declared instead.
        assert str(block._logo_url).startswith("https://")


@pytest.mark.parametrize(("fields", "field", "text"), [
    ({"host": "http://posthog.example.com"}, "host", "https"),
    ({"host": "posthog.example.com"}, "host", "not a URL"),
    ({"personal_api_key": "   "}, "personal_api_key", "empty"),
    ({"project_id": 0}, "project_id", "positive"),
    ({"project_id": "current"}, "project_id", ""),
    ({"rate_limit": "lots"}, "rate_limit", "480/min"),
    ({"path_style": "teams"}, "path_style", ""),
    ({"timeout_seconds": 0}, "timeout_seconds", ""),
])
def test_bad_fields_are_named(fields, field, text) -> None:
    values = {"personal_api_key": "phx_x", **fields}
    with pytest.raises(PydanticValidationError) as info:
        PostHogCredentials(**values)
    error = info.value.errors()[0]
    assert error["loc"][0] == field and text in str(info.value)


@pytest.mark.parametrize("host", ["http://127.0.0.1:8000", "http://localhost:8010",
                                  "http://[::1]:9000", "https://eu.posthog.com/",
                                  "https://posthog.internal.example.com"])
def test_allowed_hosts(host) -> None:
    assert not PostHogCredentials(host=host, personal_api_key="k").host.endswith("/")


def test_defaults_follow_posthog_cloud() -> None:
    block = PostHogCredentials(personal_api_key="phx_k")
    assert block.host == "https://us.posthog.com" and block.project_id is None
    assert block.rate_limit == "480/min,4800/h"
    assert PostHogCredentials(personal_api_key="k", project_id="42").project_id == 42
    # "@current" from code or an older saved block means "empty": the owner's project.
    assert PostHogCredentials(personal_api_key="k", project_id="@current").project_id is None


def test_block_form_schema_is_what_the_ui_enforces() -> None:
    """The Prefect UI builds the block form from this schema: project id a plain integer,
    the host checked by its pattern at save time, an empty rate limit visibly "off"."""
    import re

    schema = PostHogCredentials.model_json_schema()
    props = schema["properties"]
    assert {"type": "integer", "minimum": 1} in props["project_id"]["anyOf"]
    assert "@current" in props["project_id"]["description"]
    pattern = re.compile(props["host"]["pattern"])
    assert pattern.match("https://eu.posthog.com") and pattern.match("http://127.0.0.1:8010")
    assert not pattern.match("eu.posthog.com") and not pattern.match("https://x.com/?a=1")
    assert "empty = off" in props["rate_limit"]["title"]
    assert "``" not in json.dumps(schema)


def test_get_client_works_without_prefect_runs(credentials) -> None:
    client = credentials.get_client()
    assert isinstance(client, PostHogClient)
    with client:
        assert client.list_groups(0).results == []
    with credentials.model_copy(update={"path_style": "environments"}).get_client() as env:
        assert env.list_groups(0).results == []


def test_save_load_round_trip_keeps_secret_masked(credentials) -> None:
    credentials.save("posthog-test", overwrite=True)
    loaded = PostHogCredentials.load("posthog-test")
    assert loaded.personal_api_key.get_secret_value() == ADMIN_KEY
    assert ADMIN_KEY not in repr(loaded) and ADMIN_KEY not in loaded.model_dump_json()
    assert isinstance(Block.load("posthog-credentials/posthog-test"), PostHogCredentials)


def test_secret_str_input() -> None:
    block = PostHogCredentials(personal_api_key=SecretStr("phx_s"))
    assert block.personal_api_key.get_secret_value() == "phx_s"


def test_block_load_in_a_process_that_never_imports_the_package(credentials) -> None:
    # The prefect.collections entry point lets Prefect find the block class by its slug.
    import os
    import subprocess
    import sys

    from prefect.settings import PREFECT_API_URL

    credentials.save("posthog-entry-point", overwrite=True)
    code = ("from prefect.blocks.core import Block\n"
            "b = Block.load('posthog-credentials/posthog-entry-point')\n"
            "print(type(b).__module__, type(b).__name__)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()},
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "prefect_posthog.blocks.credentials PostHogCredentials" in result.stdout
