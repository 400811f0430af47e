"""The `api` fixture: raw HTTP to the emulator as PostHog's test users would call it."""

from __future__ import annotations

import httpx
import pytest

from prefect_posthog.emulator import Emulator
from tests.helpers import ADMIN_KEY

MEMBER_KEY = "phx_member_key_for_ported_tests"
OWNER_KEY = "phx_owner_key_for_ported_tests"
PROJECT_READ_KEY = "phx_project_read_only_key"
OTHER_ORG_KEY = "phx_other_org_admin_key"


@pytest.fixture
def api(emulator: Emulator):
    emulator.seed({
        "organizations": [{"id": "org-2", "name": "Other Org"}],
        "projects": [{"id": 2, "organization": "org-2", "name": "Other Team"}],
        "users": [{"id": 10, "org_level": "member"}, {"id": 11, "org_level": "owner"},
                  {"id": 12, "organization": "org-2", "org_level": "admin",
                   "current_team": 2}],
        "personal_api_keys": [{"value": MEMBER_KEY, "user": 10},
                              {"value": OWNER_KEY, "user": 11},
                              {"value": PROJECT_READ_KEY, "scopes": ["project:read"]},
                              {"value": OTHER_ORG_KEY, "user": 12}],
    })

    def call(method: str, path: str, key: str | None = ADMIN_KEY, project: int = 1,
             **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.request(method, f"{emulator.url}/api/projects/{project}/{path}",
                             headers=headers, timeout=10, **kwargs)
    return call
