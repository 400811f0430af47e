"""Feature flags for local evaluation: Django's ``feature_flags/local_evaluation``
(`products/feature_flags/backend/api/feature_flag.py`), which accepts project secret API
keys, so a rotation can check that a ``phs_`` value works."""

from __future__ import annotations

from typing import Any

from prefect_posthog.emulator.common import Request
from prefect_posthog.emulator.routing import api
from prefect_posthog.emulator.store import PostHogState


def local_evaluation(store: PostHogState, req: Request) -> tuple[int, Any]:
    """The team's active flags, its group-type mapping and cohorts."""
    team = str(req.team["id"])
    flags = [f for f in store.data["feature_flags"].get(team, []) if f.get("active", True)]
    mapping = store.data["group_types"].get(team, {})
    return 200, {"flags": flags, "group_type_mapping": mapping, "cohorts": {}}


ROUTES = [
    api("GET", r"feature_flags/local_evaluation", local_evaluation, "feature_flag:read",
        project_secret=True),
]
