"""Who is calling an ``api`` route, and may they: PostHog's authentication classes and
permission checks for the slice.

- Personal API keys (`posthog/auth.py`, PersonalAPIKeyAuthentication): the ``Authorization:
  Bearer`` header, else the body's ``personal_api_key``, else the query string's; a Bearer
  ``pha_`` token is OAuth's and skipped.
- Project secret API keys (`posthog/auth.py`, ProjectSecretAPIKeyAuthentication) on the
  routes that take them (``Route.project_secret``); elsewhere a ``phs_`` Bearer is read as
  a personal key, and is invalid as one.
- A share's ``sharing_access_token`` (`posthog/auth.py`, SharingAccessTokenAuthentication)
  on the routes a shared page reads (``sharing_enabled_actions``).

Then `posthog/permissions.py`: the key's scopes (APIScopePermission), its project list, the
user's membership and the organization's personal-key policy.
"""

from __future__ import annotations

from prefect_posthog.emulator import project_secret_api_keys as psak
from prefect_posthog.emulator import sharing
from prefect_posthog.emulator.common import (
    Request,
    forbidden,
    not_found,
    std_error,
    unauthenticated,
)
from prefect_posthog.emulator.routing import Route
from prefect_posthog.emulator.store import PostHogState


def authenticate(store: PostHogState, route: Route, req: Request) -> str | None:
    """Authenticate and authorise ``req``, filling ``req.team`` and ``req.user``.

    Returns:
        The personal API key to throttle, or ``None`` when another credential was used.

    Raises:
        ApiError: 401, 403 or 404 with PostHog's body.
    """
    token = _bearer(req)
    if token and token.startswith("phs_") and _takes_project_secret(store, route):
        req.team = _team(store, req.params["project"], None)
        psak.authenticate_project_secret_key(store, req.team, token, route.scope or "",
                                             req.now)
        return None
    source, value = _personal_key(req, token)
    if value is None and req.query.get("sharing_access_token"):
        req.team = _team(store, req.params["project"], None)
        _check_sharing_access_token(store, route, req.team, req.query["sharing_access_token"])
        return None
    if value is None:
        raise unauthenticated("Authentication credentials were not provided.",
                              "not_authenticated")
    key = store.data["personal_api_keys"].get(value)
    user = store.data["users"].get(str(key["user"])) if key else None
    if key is None or user is None or not user.get("is_active", True):
        raise unauthenticated(f"Personal API key found in {source} is invalid.")
    req.user = user
    req.team = _team(store, req.params["project"], user)
    _authorize(store, route, key, user, req.team)
    return value


def _takes_project_secret(store: PostHogState, route: Route) -> bool:
    """``Route.project_secret``: always, never, or while the named switch is on."""
    if isinstance(route.project_secret, str):
        return bool(getattr(store.config, route.project_secret))
    return route.project_secret


def _bearer(req: Request) -> str | None:
    auth = req.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    return None if token and token.startswith("pha_") else token


def _personal_key(req: Request, token: str | None) -> tuple[str | None, str | None]:
    if token:
        return "request Authorization header", token
    body = req.json_body()
    if body.get("personal_api_key"):
        return "request body", str(body["personal_api_key"])
    if req.query.get("personal_api_key"):
        return "request query string", req.query["personal_api_key"]
    return None, None


def _team(store: PostHogState, project: str, user: dict | None) -> dict:
    """The URL's team: an id or ``@current`` (`posthog/api/routing.py`)."""
    if project == "@current":
        project = str(user["current_team"]) if user else ""
    if not project.isdigit() or project not in store.data["projects"]:
        raise not_found("Project not found.")
    return store.data["projects"][project]


def has_scope(held: list[str], needed: str) -> bool:
    """A ``*`` key holds every scope; ``x:write`` also grants ``x:read``."""
    if "*" in held or needed in held:
        return True
    obj, _, action = needed.partition(":")
    return action == "read" and f"{obj}:write" in held


def _authorize(store: PostHogState, route: Route, key: dict, user: dict, team: dict) -> None:
    if not has_scope(key["scopes"], route.scope or ""):
        raise forbidden(f"API key missing required scope '{route.scope}'")
    if key.get("scoped_teams") and team["id"] not in key["scoped_teams"]:
        raise forbidden(f"API key does not have access to the requested project: "
                        f"ID {team['id']}.")
    level = store.org_level(user, team)
    if level is None:
        raise forbidden("You don't have access to the project.")
    org = store.organization(team)
    if org.get("members_can_use_personal_api_keys") is False and level not in (
            "admin", "owner"):
        raise forbidden(f"Organization '{org['name']}' does not allow using personal API "
                        "keys. Contact an admin to enable personal API keys for this "
                        "organization.")


def _check_sharing_access_token(store: PostHogState, route: Route, team: dict,
                                token: str) -> None:
    """A live share's token reads what its page needs, of its own project only."""
    config = sharing.live_sharing_config(store, token)
    if config is None:
        raise std_error(403, "authentication_error", "authentication_failed",
                        "Sharing access token is invalid.")
    if not route.sharing or config["resource"].split(":", 1)[0] != str(team["id"]):
        raise forbidden("You do not have permission to perform this action.")
