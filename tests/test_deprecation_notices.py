"""PostHog's deprecation notices reach the user: one warning and one log line per process
and deprecated prefix, naming the path, its successor and the sunset date.

PostHog serves `/api/environments/*` through the `/api/projects/*` views and marks those
answers `Deprecation: true`, `Sunset: Fri, 31 Jul 2026 00:00:00 GMT` and
`Link: </api/projects/...>; rel="successor-version"` (`EnvironmentsRewriteMiddleware` in
`posthog/middleware.py`).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler

from prefect_posthog import PostHogCredentials
from prefect_posthog import tasks as t
from prefect_posthog.client import (
    NotFoundError,
    PostHogClient,
    PostHogDeprecationWarning,
    reset_deprecation_warnings,
)
from tests.helpers import ADMIN_KEY, HostileProxy

KEY = "phx_CANARY_deprecation_key_42"
SUNSET = "Fri, 31 Jul 2026 00:00:00 GMT"


@pytest.fixture(autouse=True)
def fresh_notices() -> Iterator[None]:
    reset_deprecation_warnings()
    yield
    reset_deprecation_warnings()


def headers_for(path: str, *, link: bool = True, sunset: bool = True) -> dict[str, str]:
    """The headers PostHog's middleware adds to an `/api/environments/` answer."""
    if "/api/environments/" not in path:
        return {}
    out = {"Deprecation": "true"}
    if sunset:
        out["Sunset"] = SUNSET
    if link:
        out["Link"] = f'<{path.replace("/api/environments/", "/api/projects/")}?x=1>; ' \
                      'rel="successor-version"'
    return out


def client(status: int = 200, **kwargs: Any) -> PostHogClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=[] if status < 400 else {"detail": "Not found."},
                              headers=headers_for(request.url.path, **kwargs))
    return PostHogClient("https://eu.posthog.com", KEY, 1, path_style="environments",
                         rate_limits=(), transport=httpx.MockTransport(handler),
                         sleep=lambda _s: None)


def notices(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, PostHogDeprecationWarning)]


def test_one_warning_and_one_log_line_per_process(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="prefect_posthog.client")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            with client() as posthog:
                posthog.list_group_types()
                posthog.list_related_groups("acme", 0)
    texts = notices(caught)
    assert len(texts) == 1
    assert texts[0].startswith("PostHog marks /api/environments/1/groups_types/ as deprecated "
                               "(sunset 2026-07-31); its successor is "
                               "/api/projects/1/groups_types/.")
    assert "path_style='projects'" in texts[0]
    logged = [r.getMessage() for r in caplog.records if "PostHog marks" in r.getMessage()]
    assert logged == texts
    assert caught[0].filename == __file__  # points at the caller's line, not the client


def test_the_warning_is_shown_again_after_a_reset() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with client() as posthog:
            posthog.list_group_types()
            reset_deprecation_warnings()
            posthog.list_group_types()
    assert len(notices(caught)) == 2


def test_successor_is_derived_without_a_link_and_sunset_is_optional() -> None:
    with pytest.warns(PostHogDeprecationWarning) as caught, client(link=False,
                                                                   sunset=False) as posthog:
        posthog.list_group_types()
    text = notices(list(caught))[0]
    assert "its successor is /api/projects/1/groups_types/." in text and "sunset" not in text


def test_error_answers_carry_the_notice_too() -> None:
    with pytest.warns(PostHogDeprecationWarning) as caught, client(404) as posthog, \
            pytest.raises(NotFoundError):
        posthog.find_group(0, "gone")
    assert "/api/environments/1/groups/find/" in notices(list(caught))[0]


def test_sunset_alone_counts_and_each_prefix_warns_once() -> None:
    answers = {"/api/environments/1/groups_types/": {"Deprecation": "true"},
               "/api/projects/1/groups_types/": {"Sunset": SUNSET}}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[], headers=answers.get(request.url.path, {}))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for style in ("environments", "projects", "environments", "projects"):
            with PostHogClient("https://eu.posthog.com", KEY, 1, path_style=style,
                               rate_limits=(), transport=httpx.MockTransport(handler)) as p:
                p.list_group_types()
    texts = notices(caught)
    assert len(texts) == 2
    assert "PostHog names no successor" in texts[1] and "sunset 2026-07-31" in texts[1]


def test_plain_answers_warn_nothing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with PostHogClient("https://eu.posthog.com", KEY, 1, rate_limits=(),
                           transport=httpx.MockTransport(handler)) as posthog:
            posthog.list_group_types()
    assert notices(caught) == []


def test_a_secret_echoed_in_the_link_is_masked() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[], headers={
            "Deprecation": "true", "Link": f'</api/projects/{KEY}/>; rel="successor-version"'})

    with pytest.warns(PostHogDeprecationWarning) as caught, PostHogClient(
            "https://eu.posthog.com", KEY, 1, path_style="environments", rate_limits=(),
            transport=httpx.MockTransport(handler)) as posthog:
        posthog.list_group_types()
    text = notices(list(caught))[0]
    assert KEY not in text and "/api/projects/**********/" in text


def test_users_see_the_warning_under_pythons_default_filters() -> None:
    # Python hides DeprecationWarning outside __main__; this warning must not be hidden.
    script = (
        "import httpx\n"
        "from prefect_posthog.client import PostHogClient\n"
        "def handler(request):\n"
        "    return httpx.Response(200, json=[], headers={'Deprecation': 'true'})\n"
        "PostHogClient('https://eu.posthog.com', 'phx_default_filters_key', 1,\n"
        "              path_style='environments', rate_limits=(),\n"
        "              transport=httpx.MockTransport(handler)).list_group_types()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stderr.count("PostHogDeprecationWarning: PostHog marks "
                             "/api/environments/1/groups_types/ as deprecated") == 1


# -- end to end: a real HTTP server answering as PostHog does, and a real Prefect run -------

def run_log_messages(flow_run_id: Any, needle: str) -> list[str]:
    """The flow run's log messages containing ``needle``, once the API has them."""
    APILogHandler().flush()
    found: list[str] = []
    with get_client(sync_client=True) as prefect:
        for _ in range(300):  # up to a minute
            logs = prefect.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            found = [log.message for log in logs if needle in log.message]
            if found:
                break
            time.sleep(0.2)
    return found


def reads_through(credentials: PostHogCredentials) -> tuple[Any, list[str]]:
    """A user's flow reading twice through ``credentials``: its run id and the notices."""
    @flow
    def two_reads() -> None:
        t.list_group_types(credentials)
        t.list_groups(credentials, 0)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        state = two_reads(return_state=True)
    assert state.is_completed()
    return state.state_details.flow_run_id, notices(caught)


def assert_one_notice(flow_run_id: Any, texts: list[str]) -> None:
    assert len(texts) == 1, texts
    assert texts[0].startswith("PostHog marks /api/environments/1/groups_types/ as deprecated "
                               "(sunset 2026-07-31); its successor is "
                               "/api/projects/1/groups_types/.")
    assert run_log_messages(flow_run_id, "PostHog marks") == texts


def deprecating_proxy(target: str) -> HostileProxy:
    """PostHog's `EnvironmentsRewriteMiddleware` in front of the emulator: every request is
    forwarded; answers on `/api/environments/` carry the deprecation headers."""
    proxy = HostileProxy(target)
    proxy.add("add_headers", "^/api/environments/", count=10_000, headers=headers_for)
    return proxy


def test_environments_notice_reaches_a_prefect_runs_logs_once(emulator) -> None:
    proxy = deprecating_proxy(emulator.url)
    try:
        credentials = PostHogCredentials(host=proxy.url, personal_api_key=ADMIN_KEY,
                                         project_id=1, rate_limit="", timeout_seconds=5,
                                         path_style="environments")
        assert_one_notice(*reads_through(credentials))
    finally:
        proxy.close()


def test_projects_path_style_gets_no_notice(emulator) -> None:
    proxy = deprecating_proxy(emulator.url)
    try:
        credentials = PostHogCredentials(host=proxy.url, personal_api_key=ADMIN_KEY,
                                         project_id=1, rate_limit="", timeout_seconds=5)
        assert reads_through(credentials)[1] == []
    finally:
        proxy.close()


def test_environments_notice_against_the_emulator_itself(emulator) -> None:
    credentials = PostHogCredentials(host=emulator.url, personal_api_key=ADMIN_KEY,
                                     project_id=1, rate_limit="", timeout_seconds=5,
                                     path_style="environments")
    assert_one_notice(*reads_through(credentials))


def test_the_block_says_environments_is_deprecated() -> None:
    schema = json.dumps(PostHogCredentials.model_json_schema()["properties"]["path_style"])
    assert "deprecated" in schema and "2026-07-31" in schema and "successor" in schema
