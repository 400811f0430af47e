"""The emulator's ASGI application: routing, authentication, scopes, throttling, faults.

PostHog API routes live under ``/api/projects/{id}/`` and ``/api/environments/{id}/``.
Admin routes (not part of PostHog) live under ``/_emulator/``; the public share viewer under
``/shared/{access_token}``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import random
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from prefect_posthog.client import RateWindow, parse_rates
from prefect_posthog.emulator import query as query_api
from prefect_posthog.emulator.capture import CAPTURE_PATH, Ingestion, IngestionFaults
from prefect_posthog.emulator.common import (
    ApiError,
    Request,
    default_state,
    forbidden,
    not_found,
    std_error,
)
from prefect_posthog.emulator.seed import apply_seed
from prefect_posthog.emulator.state import PostHogState

logger = logging.getLogger("prefect_posthog.emulator")

# late: the request is held for late_seconds and then applied; set it above the client's
# timeout and the client gives up on a write that lands afterwards.
FAULT_KINDS = ("500", "502", "503", "429", "reset", "slow", "lost_response", "capture", "late")
_RESOURCE = r"(?P<resource>insights|dashboards)/(?P<resource_id>[^/]+)"
_RECORDING = r"(?P<resource>session_recordings)/(?P<resource_id>[^/]+)"
_KEY = r"project_secret_api_keys/(?P<key_id>[^/.]+)"


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    scope: str


def _routes() -> list[Route]:
    table = [
        ("GET", r"", "get_project", "project:read"),
        ("POST", r"query", "query", "query:read"),
        ("GET", r"groups_types", "list_group_types", "group:read"),
        ("PATCH", r"groups_types/update_metadata", "update_group_types_metadata",
         "group:write"),
        ("PUT", r"groups_types/create_detail_dashboard", "create_group_type_detail_dashboard",
         "group:write"),
        ("PUT", r"groups_types/set_default_columns", "set_group_type_default_columns",
         "group:write"),
        ("DELETE", r"groups_types/(?P<group_type_index>\d+)", "delete_group_type", "group:write"),
        ("GET", r"groups", "list_groups", "group:read"),
        ("POST", r"groups", "create_group", "group:write"),
        ("GET", r"groups/find", "find_group", "group:read"),
        ("POST", r"groups/update_property", "update_group_property", "group:write"),
        ("POST", r"groups/delete_property", "delete_group_property", "group:write"),
        ("GET", r"groups/activity", "get_group_activity", "activity_log:read"),
        ("GET", r"groups/related", "list_related_groups", "group:read"),
        ("GET", r"groups/property_definitions", "list_group_property_definitions",
         "group:read"),
        ("GET", r"groups/property_values", "list_group_property_values", "group:read"),
        ("GET", r"project_secret_api_keys", "list_project_secret_api_keys", "project:read"),
        ("POST", r"project_secret_api_keys", "create_project_secret_api_key", "project:write"),
        ("GET", _KEY, "get_project_secret_api_key", "project:read"),
        ("PATCH", _KEY, "update_project_secret_api_key", "project:write"),
        ("PUT", _KEY, "replace_project_secret_api_key", "project:write"),
        ("DELETE", _KEY, "delete_project_secret_api_key", "project:write"),
        ("POST", _KEY + "/roll", "roll_project_secret_api_key", "project:write"),
        ("GET", r"feature_flags/local_evaluation", "local_evaluation", "feature_flag:read"),
    ]
    for parent in (_RESOURCE, _RECORDING):
        table += [
            ("GET", parent + "/sharing", "get_sharing", "sharing_configuration:read"),
            ("PATCH", parent + "/sharing", "update_sharing", "sharing_configuration:write"),
            ("POST", parent + "/sharing/refresh", "refresh_sharing",
             "sharing_configuration:write"),
            ("POST", parent + "/sharing/passwords", "create_sharing_password",
             "sharing_configuration:write"),
            ("DELETE", parent + r"/sharing/passwords/(?P<password_id>[^/.]+)",
             "delete_sharing_password", "sharing_configuration:write"),
        ]
    return [Route(m, re.compile(p + "/?"), op, scope) for m, p, op, scope in table]


ROUTES = _routes()
# Read with a share's ``sharing_access_token`` instead of a personal key (SPEC §6.5).
SHARING_ENABLED_OPERATIONS = frozenset({"list_group_types"})
# HogQL queries have their own throttle, replacing the default ones (SPEC §6.6).
HOGQL_RATE = parse_rates("120/h")
API_PREFIX = re.compile(r"^/api/(?P<style>projects|environments)/(?P<project>[^/]+)/(?P<rest>.*)$")


class Throttle:
    """DRF's SimpleRateThrottle, one history per window per personal key (SPEC §0.5)."""

    def __init__(self, windows: tuple[RateWindow, ...]) -> None:
        self.windows = windows
        self.history: dict[tuple[str, int], deque[float]] = {}

    def check(self, key: str, now: float) -> float | None:
        """Return the wait in seconds when throttled, else ``None`` (and record the hit)."""
        waits = []
        for index, window in enumerate(self.windows):
            history = self.history.setdefault((key, index), deque())
            while history and history[-1] <= now - window.period:
                history.pop()
            if len(history) >= window.limit:
                remaining = window.period - (now - history[-1])
                available = window.limit - len(history) + 1
                waits.append(remaining / available)
            else:
                # DRF records a pass in each throttle even when another one refuses.
                history.appendleft(now)
        return max(waits) if waits else None


@dataclass
class Faults:
    """Seeded fault injection plus faults scheduled for given operations."""

    kinds: tuple[str, ...] = ()
    rate: float = 0.0
    seed: int = 0
    slow_seconds: float = 2.0
    late_seconds: float = 3.0
    burst: int = 3
    operations: tuple[str, ...] = ()
    schedule: list[dict] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random)
    _burst_left: int = 0

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown fault kind(s) {bad}; choose from {', '.join(FAULT_KINDS)}")
        if not 0 <= self.rate <= 1:
            raise ValueError("fault rate must be between 0 and 1")
        self._rng = random.Random(self.seed)

    def pick(self, operation: str) -> str | None:
        for entry in self.schedule:
            if entry["operation"] in (operation, "*") and entry["count"] > 0:
                entry["count"] -= 1
                return entry["fault"]
        if self._burst_left > 0:
            self._burst_left -= 1
            return "429"
        if not self.kinds or (self.operations and operation not in self.operations):
            return None
        if self._rng.random() >= self.rate:
            return None
        kind = self._rng.choice(self.kinds)
        if kind == "capture" and operation not in ("update_group_property",
                                                   "delete_group_property"):
            return None
        if kind == "429":
            self._burst_left = self.burst - 1
        return kind


class _DropConnection(Exception):
    """Raised after the response started, so uvicorn closes the connection mid-response."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _DropConnection))


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


class EmulatorApp:
    """The ASGI callable.

    Args:
        state: The emulated data.
        rate_limit: Windows per personal key, or ``()`` for no rate limiting.
        faults: Fault injection settings.
        state_file: Where to save the state at shutdown (and load it from at start).
    """

    def __init__(self, state: PostHogState | None = None, *,
                 rate_limit: tuple[RateWindow, ...] = parse_rates("480/min,4800/h"),
                 faults: Faults | None = None, state_file: str | None = None,
                 ingestion_lag: float = 3.0) -> None:
        self.state = state or PostHogState()
        # reset goes back to the switches the emulator started with
        self._initial_config = dataclasses.replace(self.state.config)
        self.throttle = Throttle(tuple(rate_limit))
        self.query_throttle = Throttle(HOGQL_RATE if rate_limit else ())
        self.ingestion = Ingestion(self.state, lag=ingestion_lag)
        self.faults = faults or Faults()
        self.state_file = state_file
        self.requests: deque[dict] = deque(maxlen=200_000)
        self.webhook: list[Any] = []
        self.on_startup: Any = None  # called once the server is about to accept requests
        self._seq = 0

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        path: str = scope["path"]
        method: str = scope["method"]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = dict(parse_qsl(scope["query_string"].decode(), keep_blank_values=True))
        host = headers.get("host", "127.0.0.1")
        base_url = f"{scope.get('scheme', 'http')}://{host}"
        if path.startswith("/_emulator/"):
            status, body = self._admin(method, path, query, raw)
            await _send_json(send, status, body)
            return
        if path.startswith("/shared/"):
            status, body = self._viewer(method, path, raw)
            await _send_json(send, status, body)
            return
        capture = CAPTURE_PATH.match(path)
        if capture and method in ("POST", "GET"):
            with self.state.lock:
                status, body = self.ingestion.capture(capture.group("route"), query, headers,
                                                      raw)
            await _send_json(send, status, body)
            return
        await self._api(send, method, path, query, headers, raw, base_url)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._ingesting = asyncio.ensure_future(self._ingest_forever())
                await send({"type": "lifespan.startup.complete"})
                if self.on_startup is not None:
                    self.on_startup()
            elif message["type"] == "lifespan.shutdown":
                self._ingesting.cancel()
                self.save()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _ingest_forever(self) -> None:
        """The ingestion pipeline: applies captured events once their lag has passed."""
        while True:
            await asyncio.sleep(0.1)
            with self.state.lock:
                self.ingestion.apply_due()

    def save(self) -> None:
        """Write the state file, when one is configured."""
        if self.state_file:
            with open(self.state_file, "w") as handle:
                handle.write(self.state.dump())

    # -- PostHog API -------------------------------------------------------------------------

    async def _api(self, send: Any, method: str, path: str, query: dict[str, str],
                   headers: dict[str, str], raw: bytes, base_url: str) -> None:
        entry: dict[str, Any] = {"method": method, "path": path, "operation": None,
                                 "status": None, "fault": None, "time": time.time()}
        status, body, extra = 500, None, {}
        fault = None
        try:
            route, params, project = self._route(method, path)
            entry["operation"] = route.operation
            fault = self.faults.pick(route.operation)
            entry["fault"] = fault
            if fault == "reset":
                raise _DropConnection()
            if fault in ("500", "502", "503"):
                raise std_error(int(fault), "server_error", "error", "A server error occurred.")
            if fault == "429":
                raise std_error(429, "throttled_error", "throttled",
                                "Request was throttled. Expected available in 1 second.")
            if fault == "slow":
                await asyncio.sleep(self.faults.slow_seconds)
            if fault == "late":
                await asyncio.sleep(self.faults.late_seconds)
            with self.state.lock:
                self.ingestion.apply_due()  # reads see everything whose lag has passed
                status, body = self._dispatch(route, params, project, method, path, query,
                                              headers, raw, base_url)
            if fault == "capture":
                status, body = 502, {"code": "Failed to submit group property update event.",
                                     "detail": "capture_http_error",
                                     "type": "capture_http_error"}
        except ApiError as err:
            status, body, extra = err.status, err.body, err.headers
        except _DropConnection:
            entry["status"] = "dropped"
            self._log(entry)
            await _drop(send)
            return
        entry["status"] = status
        self._log(entry)
        if fault == "lost_response":
            entry["status"] = f"lost:{status}"
            await _drop(send)
            return
        await _send_json(send, status, body, extra)

    def _log(self, entry: dict) -> None:
        self._seq += 1
        entry["seq"] = self._seq
        self.requests.append(entry)

    def _route(self, method: str, path: str) -> tuple[Route, dict[str, str], str]:
        match = API_PREFIX.match(path)
        if not match:
            raise not_found()
        rest = match.group("rest")
        allowed = []
        for route in ROUTES:
            m = route.pattern.fullmatch(rest)
            if m:
                if route.method == method:
                    return route, m.groupdict(), match.group("project")
                allowed.append(route.method)
        if allowed:
            raise std_error(405, "invalid_request", "method_not_allowed",
                            f'Method "{method}" not allowed.')
        raise not_found()

    def _dispatch(self, route: Route, params: dict[str, str], project: str, method: str,
                  path: str, query: dict[str, str], headers: dict[str, str], raw: bytes,
                  base_url: str) -> tuple[int, Any]:
        body = _parse_body(raw, headers.get("content-type", ""))
        data = self.state.data
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if token and token.startswith("pha_"):
            token = None

        if route.operation == "local_evaluation" and token and token.startswith("phs_"):
            team = self._team(project, None)
            key = self.state.find_project_secret_key(team["id"], token)
            if key is None:
                raise std_error(401, "authentication_error", "authentication_failed",
                                "Project secret API key is invalid.")
            if "feature_flag:read" not in key["scopes"]:
                raise forbidden("API key missing required scope 'feature_flag:read'")
            now = self.state.now()
            if key["last_used_at"] is None or now - key["last_used_at"] > 3600:
                key["last_used_at"] = now
            return self.state.local_evaluation(self._request(method, path, base_url, params,
                                                             query, body, team, None))

        source, value = None, None
        if token:
            source, value = "request Authorization header", token
        elif isinstance(body, dict) and body.get("personal_api_key"):
            source, value = "request body", str(body["personal_api_key"])
        elif query.get("personal_api_key"):
            source, value = "request query string", query["personal_api_key"]
        if value is None and query.get("sharing_access_token"):
            team = self._team(project, None)
            self._check_sharing_access_token(route, team, query["sharing_access_token"])
            return getattr(self.state, route.operation)(
                self._request(method, path, base_url, params, query, body, team, None))
        if value is None:
            raise std_error(401, "authentication_error", "not_authenticated",
                            "Authentication credentials were not provided.")
        key = data["personal_api_keys"].get(value)
        user = data["users"].get(str(key["user"])) if key else None
        if key is None or user is None or not user.get("is_active", True):
            raise std_error(401, "authentication_error", "authentication_failed",
                            f"Personal API key found in {source} is invalid.")

        team = self._team(project, user)
        if not _has_scope(key["scopes"], route.scope):
            raise forbidden(f"API key missing required scope '{route.scope}'")
        if key.get("scoped_teams") and team["id"] not in key["scoped_teams"]:
            raise forbidden(f"API key does not have access to the requested project: "
                            f"ID {team['id']}.")
        level = self.state.org_level(user, team)
        if level is None:
            raise forbidden("You don't have access to the project.")
        org = data["organizations"][team["organization"]]
        if org.get("members_can_use_personal_api_keys") is False and level not in (
                "admin", "owner"):
            raise forbidden(f"Organization '{org['name']}' does not allow using personal API "
                            "keys. Contact an admin to enable personal API keys for this "
                            "organization.")

        throttle = self.query_throttle if route.operation == "query" else self.throttle
        if throttle.windows:
            wait = throttle.check(value, self.state.now())
            if wait is not None:
                seconds = max(1, math.ceil(wait))
                raise ApiError(429, {"type": "throttled_error", "code": "throttled",
                                     "detail": f"Request was throttled. Expected available in "
                                               f"{seconds} second{'s' if seconds != 1 else ''}.",
                                     "attr": None}, {"Retry-After": str(seconds)})
        request = self._request(method, path, base_url, params, query, body, team, user)
        if route.operation in query_api.HANDLERS:
            return query_api.HANDLERS[route.operation](self.state, request)
        return getattr(self.state, route.operation)(request)

    def _check_sharing_access_token(self, route: Route, team: dict, token: str) -> None:
        """A live share's token reads what its viewer needs (``sharing_enabled_actions``)
        of its own project only."""
        config = self.state.live_sharing_config(token)
        if config is None:
            raise std_error(403, "authentication_error", "authentication_failed",
                            "Sharing access token is invalid.")
        if (route.operation not in SHARING_ENABLED_OPERATIONS
                or config["resource"].split(":", 1)[0] != str(team["id"])):
            raise forbidden("You do not have permission to perform this action.")

    def _request(self, method: str, path: str, base_url: str, params: dict, query: dict,
                 body: Any, team: dict, user: dict | None) -> Request:
        return Request(method=method, path=path, base_url=base_url, params=params, query=query,
                       body=body, team=team, user=user or {}, now=self.state.now())

    def _team(self, project: str, user: dict | None) -> dict:
        if project == "@current":
            project = str(user["current_team"]) if user else ""
        if not project.isdigit() or project not in self.state.data["projects"]:
            raise not_found("Project not found.")
        return self.state.data["projects"][project]

    # -- public viewer -----------------------------------------------------------------------

    def _viewer(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        token = path[len("/shared/"):].strip("/")
        password = None
        if method == "POST":
            body = _parse_body(raw, "application/json")
            password = body.get("password") if isinstance(body, dict) else None
        with self.state.lock:
            return self.state.view_share(token, password)

    # -- admin -------------------------------------------------------------------------------

    def _admin(self, method: str, path: str, query: dict[str, str],
               raw: bytes) -> tuple[int, Any]:
        action = path[len("/_emulator/"):].strip("/")
        body = _parse_body(raw, "application/json") if raw else {}
        body = body if isinstance(body, dict) else {}
        try:
            with self.state.lock:
                return self._admin_action(method, action, query, body)
        except ApiError as err:
            return err.status, err.body
        except (KeyError, TypeError, ValueError) as exc:
            return 400, {"error": f"bad admin request: {type(exc).__name__}: {exc}"}

    def _admin_action(self, method: str, action: str, query: dict[str, str],
                      body: dict) -> tuple[int, Any]:
        state = self.state
        if action == "health":
            return 200, {"ok": True}
        if action == "state" and method == "GET":
            return 200, json.loads(state.dump())["data"]
        if action == "requests" and method == "GET":
            since = int(query.get("since", 0))
            return 200, [r for r in self.requests if r["seq"] > since]
        if action == "requests" and method == "DELETE":
            self.requests.clear()
            return 204, None
        if action == "seed" and method == "POST":
            return 200, apply_seed(state, body)
        if action == "reset" and method == "POST":
            keys = dict(state.data["personal_api_keys"])
            state.data = default_state()
            state.config = dataclasses.replace(self._initial_config)
            state.clock_offset = 0.0
            state._index.clear()
            state.data["personal_api_keys"] = keys
            self.throttle.history.clear()
            self.query_throttle.history.clear()
            self.ingestion = Ingestion(state, lag=self.ingestion.lag)
            self.faults = Faults()
            self.requests.clear()
            return 200, {"ok": True}
        if action == "faults" and method == "POST":
            self.faults = Faults(
                kinds=tuple(body.get("kinds", ())), rate=float(body.get("rate", 0.0)),
                seed=int(body.get("seed", 0)), slow_seconds=float(body.get("slow_seconds", 2.0)),
                late_seconds=float(body.get("late_seconds", 3.0)),
                burst=int(body.get("burst", 3)), operations=tuple(body.get("operations", ())),
                schedule=[{"operation": s["operation"], "fault": s["fault"],
                           "count": int(s.get("count", 1))} for s in body.get("schedule", [])])
            return 200, {"ok": True}
        if action == "config" and method == "POST":
            for name in ("advanced_permissions", "public_sharing_allowed",
                         "property_definitions_route"):
                if name in body:
                    setattr(state.config, name, bool(body[name]))
                    for org in state.data["organizations"].values():
                        org.pop(name, None)
            if "rate_limit" in body:
                self.throttle = Throttle(parse_rates(body["rate_limit"] or ""))
                self.query_throttle = Throttle(HOGQL_RATE if self.throttle.windows else ())
            if "ingestion_lag" in body:
                self.ingestion.lag = float(body["ingestion_lag"])
            return 200, {"ok": True}
        if action == "ingestion" and method == "GET":
            return 200, {**self.ingestion.stats, "pending": self.ingestion.pending(),
                         "lag": self.ingestion.lag}
        if action == "ingestion" and method == "POST":
            # Ingestion faults (not HTTP faults): dropped / delayed, per capture request.
            self.ingestion.faults = IngestionFaults(
                kinds=tuple(body.get("kinds", ())), rate=float(body.get("rate", 0.0)),
                seed=int(body.get("seed", 0)),
                delay_seconds=float(body.get("delay_seconds", 30.0)),
                schedule=[{"fault": s["fault"], "count": int(s.get("count", 1))}
                          for s in body.get("schedule", [])])
            if body.get("flush"):
                self.ingestion.apply_due(float("inf"))
            return 200, {"ok": True}
        if action == "clock" and method == "POST":
            state.clock_offset += float(body.get("advance", 0))
            return 200, {"now": state.now()}
        if action == "webhook" and method == "POST":
            # A notification sink for local runs (not part of PostHog).
            self.webhook.append(body)
            return 200, {"ok": True}
        if action == "webhook" and method == "GET":
            return 200, list(self.webhook)
        if action == "save" and method == "POST":
            self.save()
            return 200, {"saved": self.state_file}
        return 404, {"error": f"unknown admin action {method} /_emulator/{action}"}


def _has_scope(held: list[str], needed: str) -> bool:
    if "*" in held or needed in held:
        return True
    obj, _, action = needed.partition(":")
    return action == "read" and f"{obj}:write" in held


def _parse_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "application/x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(raw.decode(), keep_blank_values=True))
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise std_error(400, "invalid_request", "parse_error",
                        f"JSON parse error - {exc}") from None


async def _send_json(send: Any, status: int, body: Any, headers: dict | None = None) -> None:
    payload = b"" if body is None and status == 204 else json.dumps(body).encode()
    head = [(b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode())]
    head += [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": payload})


async def _drop(send: Any) -> None:
    # Start a response that promises a body, then fail: uvicorn closes the connection and
    # the client sees the response as lost (a transport error).
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"1000")]})
    raise _DropConnection()
