"""PostHog's own Python SDK as the consumer of the emulator's flag definitions.

posthog-python polls ``GET {host}/flags/definitions?token=<phc>&send_cohorts`` with its
``secret_key`` and evaluates flags locally. When a poll fails it keeps polling and reports
the failure on its ``posthog`` logger: a 401 logs an error asking to verify the keys and
clears the flags, a 402 logs "quota limited" and clears them too
(``Client._handle_flag_definition_api_error``). This proves the emulator speaks its protocol.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from posthog import Posthog

from prefect_posthog.emulator import Emulator
from tests.helpers import ADMIN_KEY

TOKEN = "phc_emulator_project_token"
FLAG = "new-checkout"
ROLLED_OUT = {"groups": [{"properties": [], "rollout_percentage": 100}]}


@pytest.fixture
def make_sdk(emulator: Emulator) -> Iterator[Callable[[str], Posthog]]:
    emulator.seed({"feature_flags": [{"key": FLAG, "filters": ROLLED_OUT}]})
    clients: list[Posthog] = []

    def make(secret: str) -> Posthog:
        sdk = Posthog(project_api_key=TOKEN, secret_key=secret, host=emulator.url,
                      poll_interval=0.2, feature_flags_request_timeout_seconds=5)
        sdk.load_feature_flags()  # first poll now, then every 0.2 s
        clients.append(sdk)
        return sdk

    yield make
    for sdk in clients:
        sdk.shutdown()


def enabled(sdk: Posthog) -> bool | None:
    return sdk.get_feature_flag(FLAG, "user-1", only_evaluate_locally=True,
                                send_feature_flag_events=False)


def until(condition: Callable[[], bool], seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def management(emulator: Emulator, method: str, path: str, **kwargs) -> dict:
    response = httpx.request(method, f"{emulator.url}/api/projects/1/{path}",
                             headers={"Authorization": f"Bearer {ADMIN_KEY}"}, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


def logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    return any(text in r.getMessage() for r in caplog.records if r.name == "posthog")


def test_sdk_evaluates_locally_and_sees_rolled_keys_fail(emulator, make_sdk, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="posthog")
    key = management(emulator, "POST", "project_secret_api_keys/",
                     json={"label": "sdk", "scopes": ["feature_flag:read"]})
    sdk = make_sdk(key["value"])
    assert enabled(sdk) is True

    # Rolled by the management API behind the SDK's back: its next poll gets a 401.
    rolled = management(emulator, "POST", f"project_secret_api_keys/{key['id']}/roll/")
    assert until(lambda: logged(caplog, "Please verify both your project_api_key and "
                                        "secret_key"))
    assert until(lambda: sdk.feature_flags == [] and enabled(sdk) is None)

    # With the fresh value it works again.
    fresh = make_sdk(rolled["value"])
    assert enabled(fresh) is True

    # Reported as leaked (PostHog rolls it): the next poll fails the same way.
    caplog.clear()
    revoked = httpx.post(f"{emulator.url}/api/revoke_leaked_key",
                         json={"token": rolled["value"]}).json()
    assert revoked == {"found": True, "type": "project_secret_api_key"}
    assert until(lambda: logged(caplog, "Please verify both") and fresh.feature_flags == [])

    # A new key, then the flags quota runs out: 402, which the SDK reports and obeys.
    new = management(emulator, "POST", "project_secret_api_keys/",
                     json={"label": "sdk-2", "scopes": ["feature_flag:read"]})
    last = make_sdk(new["value"])
    assert enabled(last) is True
    emulator.configure(quota_limited=True)
    assert until(lambda: logged(caplog, "quota limited, resetting feature flag data"))
    assert until(lambda: enabled(last) is None)
    emulator.configure(quota_limited=False)
    assert until(lambda: enabled(last) is True)
