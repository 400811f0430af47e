"""The project endpoint (`posthog/api/project.py`, ProjectBackwardCompatSerializer)."""

from __future__ import annotations

from typing import Any

from prefect_posthog.emulator.common import Request, iso
from prefect_posthog.emulator.routing import api
from prefect_posthog.emulator.store import PostHogState


def get_project(store: PostHogState, req: Request) -> tuple[int, Any]:
    """``GET /api/projects/{id}/``: the project, with its capture token ``api_token``."""
    team = req.team
    types = store.data["group_types"].get(str(team["id"]), {})
    return 200, {
        "id": team["id"], "uuid": f"00000000-0000-0000-0000-{team['id']:012d}",
        "name": team["name"], "organization": team["organization"],
        "api_token": team["api_token"], "has_group_types": bool(types),
        "group_types": [{"group_type": name, "group_type_index": int(index)}
                        for index, name in sorted(types.items(), key=lambda x: int(x[0]))],
        "created_at": iso(0),
    }


def team_of_token(store: PostHogState, token: str) -> dict | None:
    """The project whose capture token (``api_token``, ``phc_…``) is ``token``."""
    for project in store.data["projects"].values():
        if project.get("api_token") == token:
            return project
    return None


ROUTES = [api("GET", r"", get_project, "project:read")]
