"""Routes and the router. Each area module lists its own routes beside its handlers.

A route names its service, which says where its path is rooted and what serves it:

- ``api``: PostHog's management API under ``/api/projects/{id}/`` and
  ``/api/environments/{id}/`` (PostHog's `posthog/api/__init__.py` registers both; the
  router's trailing slash is optional), authenticated, scoped and throttled;
- ``public``: PostHog endpoints at the root that authenticate themselves or not at all
  (the share viewer, ``/api/revoke_leaked_key``, the flags service's definitions);
- ``capture``: the capture service; ``admin``: the emulator's own ``/_emulator/`` routes.

A handler is a plain function ``handler(backend, request) -> (status, body[, headers])``
whose backend is the store (``api``, ``public``), the ingestion pipeline (``capture``) or
the app (``admin``). Its name is the operation name, the client method's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from prefect_posthog.emulator.common import ApiError, Request, not_found, std_error
from prefect_posthog.emulator.constants import API_ENVIRONMENTS_SUNSET_DATE

Handler = Callable[[Any, Any], tuple]
API_PREFIX = r"/api/(?P<style>projects|environments)/(?P<project>[^/]+)/"
_ROOTS = {"api": API_PREFIX, "public": "/", "capture": "/", "admin": "/_emulator/"}


@dataclass(frozen=True)
class Route:
    """One endpoint.

    Attributes:
        method: HTTP method, ``*`` for any.
        path: Regular expression below the service's root, without the optional slash.
        handler: The handler; its name is the operation name.
        service: ``api``, ``public``, ``capture`` or ``admin``.
        scope: The personal API key scope an ``api`` route needs.
        sharing: Whether a share's ``sharing_access_token`` may read it instead of a key.
        project_secret: Whether a project secret API key (``phs_``) may call it: a bool, or
            the name of the `Config` switch that says so.
        throttle: The throttle family (``default``, ``hogql``, ``leaked_key``), for a
            ``public`` route keyed by the client's address; ``None`` for none.
        concurrency: Whether it runs in one of the team's API query slots.
        logged: Whether it appears in ``/_emulator/requests`` and can be faulted.
    """

    method: str
    path: str
    handler: Handler
    service: str = "api"
    scope: str | None = None
    sharing: bool = False
    project_secret: bool | str = False
    throttle: str | None = None
    concurrency: bool = False
    logged: bool = True

    @property
    def operation(self) -> str:
        return self.handler.__name__


def api(method: str, path: str, handler: Handler, scope: str, **options: Any) -> Route:
    """An ``api`` route, throttled by the ``default`` family unless it says otherwise."""
    return Route(method, path, handler, "api", scope, **{"throttle": "default", **options})


class NoRoute(Exception):
    """No route matched: the error to answer (``admin`` says so in its own body) and the
    named parts of a path that exists for another method."""

    def __init__(self, error: ApiError, service: str,
                 params: dict[str, str] | None = None) -> None:
        super().__init__(error.status)
        self.error, self.service, self.params = error, service, params or {}


class Router:
    """Matches a method and path to a route and the path's named parts."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = [(route, re.compile(_ROOTS[route.service] + route.path + "/?"))
                       for route in routes]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route for ``method path``.

        Raises:
            NoRoute: 405 when an ``api`` or ``public`` route has the path but not the method,
                else 404.
        """
        elsewhere: dict[str, str] | None = None  # the path exists for another method
        for route, pattern in self.routes:
            found = pattern.fullmatch(path)
            if found is None:
                continue
            if route.method in (method, "*"):
                return route, found.groupdict()
            if route.service in ("api", "public") and elsewhere is None:
                elsewhere = found.groupdict()
        if elsewhere is not None:
            raise NoRoute(std_error(405, "invalid_request", "method_not_allowed",
                                    f'Method "{method}" not allowed.'), "api", elsewhere)
        if path.startswith("/_emulator/"):
            action = path[len("/_emulator/"):].strip("/")
            raise NoRoute(ApiError(404, {"error": f"unknown admin action {method} "
                                                  f"/_emulator/{action}"}), "admin")
        raise NoRoute(not_found(), "api")


def date_header(state: Any) -> dict[str, str]:
    """The ``Date`` header every answer carries, on the emulated clock (so a client that
    measures time against PostHog's timestamps sees ``/_emulator/clock`` moves)."""
    moment = datetime.fromtimestamp(state.now(), UTC)
    return {"Date": format_datetime(moment, usegmt=True)}


def deprecation_headers(req: Request) -> dict[str, str]:
    """`posthog/middleware.py` EnvironmentsRewriteMiddleware serves an /api/environments/
    path that has an /api/projects/ counterpart through it, and says so on every answer,
    errors included: ``Deprecation``, the successor ``Link`` (query string kept) and
    ``Sunset`` (settings API_ENVIRONMENTS_SUNSET_DATE as an HTTP date)."""
    prefix = "/api/environments/"
    if not req.path.startswith(prefix) or not req.raw_path.startswith(prefix):
        return {}
    # The path as sent, so a decoded control character never reaches a header.
    successor = "/api/projects/" + req.raw_path[len(prefix):]
    if req.query_string:
        successor += "?" + req.query_string
    headers = {"Deprecation": "true", "Link": f'<{successor}>; rel="successor-version"'}
    if API_ENVIRONMENTS_SUNSET_DATE:
        day = datetime.fromisoformat(API_ENVIRONMENTS_SUNSET_DATE).replace(tzinfo=UTC)
        headers["Sunset"] = format_datetime(day, usegmt=True)
    return headers
