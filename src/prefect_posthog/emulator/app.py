"""The emulator's ASGI application: one router over every area's routes, and how each
kind of route is served.

Logged routes (PostHog's API and public endpoints) are recorded in the request log, may be
faulted, see every ingested event that is due, and (``api``) are authenticated, authorised
and throttled first. Capture, the share viewer and the admin routes are served plainly.
Every handler runs under the store's lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from typing import Any

from prefect_posthog.client import RateWindow
from prefect_posthog.emulator import (
    admin,
    capture,
    feature_flags,
    group_types,
    groups,
    leaked_keys,
    project_secret_api_keys,
    projects,
    query,
    sharing,
)
from prefect_posthog.emulator.asgi import DropConnection, drop, read_request, send_json
from prefect_posthog.emulator.auth import authenticate
from prefect_posthog.emulator.common import ApiError, Request, parse_body
from prefect_posthog.emulator.constants import (
    DEFAULT_INGESTION_LAG,
    DEFAULT_RATE_LIMIT,
    REQUEST_LOG_SIZE,
)
from prefect_posthog.emulator.faults import (
    FAULT_KINDS,
    FaultPlan,
    Faults,
    apply_after,
    apply_before,
    hold_after,
)
from prefect_posthog.emulator.ingestion import Ingestion
from prefect_posthog.emulator.routing import (
    NoRoute,
    Route,
    Router,
    date_header,
    deprecation_headers,
)
from prefect_posthog.emulator.store import PostHogState
from prefect_posthog.emulator.throttle import Throttles

__all__ = ["FAULT_KINDS", "ROUTES", "EmulatorApp", "Faults"]

ROUTES: list[Route] = [
    *projects.ROUTES, *query.ROUTES, *groups.ROUTES, *group_types.ROUTES, *sharing.ROUTES,
    *project_secret_api_keys.ROUTES, *feature_flags.ROUTES, *leaked_keys.ROUTES,
    *capture.ROUTES, *admin.ROUTES,
]


def _answer(result: tuple) -> tuple[int, Any, dict[str, str]]:
    """A handler's ``(status, body)`` or ``(status, body, headers)``, as the latter."""
    return (result[0], result[1], result[2]) if len(result) > 2 else (result[0], result[1], {})


class EmulatorApp:
    """The ASGI callable.

    Args:
        state: The emulated data.
        rate_limit: Windows per personal key (text or parsed), ``""``/``()`` for none.
        faults: HTTP fault injection settings.
        state_file: Where to save the state at shutdown (and load it from at start).
        ingestion_lag: Seconds before a captured event reaches the groups.
    """

    def __init__(self, state: PostHogState | None = None, *,
                 rate_limit: tuple[RateWindow, ...] | str = DEFAULT_RATE_LIMIT,
                 faults: FaultPlan | None = None, state_file: str | None = None,
                 ingestion_lag: float = DEFAULT_INGESTION_LAG) -> None:
        self.state = state or PostHogState()
        # reset goes back to the switches the emulator started with
        self.initial_config = dataclasses.replace(self.state.config)
        self.initial_rate_limit, self.initial_ingestion_lag = rate_limit, ingestion_lag
        self.throttles = Throttles(rate_limit)
        self.ingestion = Ingestion(self.state, lag=ingestion_lag)
        self.faults = faults or FaultPlan()
        self.state_file = state_file
        self.requests: deque[dict] = deque(maxlen=REQUEST_LOG_SIZE)
        self.webhook: list[Any] = []
        self.on_startup: Any = None  # called once the server is about to accept requests
        self.router = Router(ROUTES)
        self.query_slots = query.QuerySlots()
        self._seq = 0
        self._ingesting: asyncio.Future | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._dispatch(await read_request(scope, receive), send)

    async def _dispatch(self, req: Request, send: Any) -> None:
        """Route the request, then serve it the way its route is served."""
        try:
            route, req.params = self.router.match(req.method, req.path)
        except NoRoute as missing:
            await self._refuse(missing, req, send)
            return
        await (self._serve_logged if route.logged else self._serve_plain)(route, req, send)

    # -- serving ---------------------------------------------------------------------------

    def _admit(self, route: Route, req: Request) -> None:
        """Authenticate and throttle (``api``), or throttle by address (``public``)."""
        req.now = self.state.now()
        if route.service == "api":
            req.body = parse_body(req.raw, req.headers.get("content-type", ""))
            key = authenticate(self.state, route, req)
            if key is not None:
                self.throttles.check(route.throttle or "default", key, req.now)
        elif route.service == "public" and route.throttle:
            self.throttles.check(route.throttle, req.client, req.now)

    def _handle(self, route: Route, req: Request) -> tuple:
        """Call the handler with its backend (under the lock)."""
        if route.service == "admin":
            return self._admin(route, req)
        return route.handler(self.ingestion if route.service == "capture" else self.state, req)

    def _admin(self, route: Route, req: Request) -> tuple:
        body = parse_body(req.raw, "application/json") if req.raw else {}
        req.body = body if isinstance(body, dict) else {}
        try:
            return route.handler(self, req)
        except (KeyError, TypeError, ValueError) as exc:
            return 400, {"error": f"bad admin request: {type(exc).__name__}: {exc}"}

    async def _serve_plain(self, route: Route, req: Request, send: Any) -> None:
        try:
            with self.state.lock:
                self._admit(route, req)
                answer = _answer(self._handle(route, req))
        except ApiError as err:
            answer = (err.status, err.body, err.headers)
        await send_json(send, answer[0], answer[1], {**answer[2], **date_header(self.state)})

    async def _serve_logged(self, route: Route, req: Request, send: Any) -> None:
        """Faults first, then the handler; the request log records what happened."""
        entry = self._entry(req, route.operation)
        fault = entry["fault"] = self.faults.pick(route.operation)
        try:
            await apply_before(self.faults, fault)
            answer = _answer(apply_after(fault, await self._run(route, req)))
        except ApiError as err:
            answer = (err.status, err.body, err.headers)
        except DropConnection:
            self._log(entry, "dropped")
            await drop(send)  # raises: the connection closes mid-answer
        if fault == "lost_response":
            self._log(entry, f"lost:{answer[0]}")
            await drop(send)  # raises: applied, and the answer never arrives
        self._log(entry, answer[0])
        await hold_after(self.faults, fault)
        headers = {**answer[2], **date_header(self.state)}
        if route.service == "api":
            headers.update(deprecation_headers(req))
        await send_json(send, answer[0], answer[1], headers)

    async def _run(self, route: Route, req: Request) -> tuple:
        """Admit and handle under the lock; a query holds one of the team's slots (outside
        the lock) while it runs for ``query_seconds``."""
        with self.state.lock:
            self.ingestion.apply_due()  # reads see everything whose lag has passed
            self._admit(route, req)
            if not route.concurrency:
                return self._handle(route, req)
        config = self.state.config
        async with self.query_slots.slot(req.team["id"], config):
            await asyncio.sleep(config.query_seconds)
            with self.state.lock:
                self.ingestion.apply_due()
                req.now = self.state.now()
                return self._handle(route, req)

    async def _refuse(self, missing: NoRoute, req: Request, send: Any) -> None:
        headers = dict(missing.error.headers)
        if missing.service != "admin":
            self._log(self._entry(req, None), missing.error.status)
        if missing.params.get("style"):  # an API path that exists for another method
            headers.update(deprecation_headers(req))
        headers.update(date_header(self.state))
        await send_json(send, missing.error.status, missing.error.body, headers)

    # -- the request log ----------------------------------------------------------------------

    @staticmethod
    def _entry(req: Request, operation: str | None) -> dict[str, Any]:
        return {"method": req.method, "path": req.path, "operation": operation,
                "status": None, "fault": None, "time": time.time()}

    def _log(self, entry: dict, status: int | str) -> None:
        self._seq += 1
        entry["status"], entry["seq"] = status, self._seq
        self.requests.append(entry)

    # -- lifespan ----------------------------------------------------------------------------

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._ingesting = asyncio.ensure_future(self._ingest_forever())
                await send({"type": "lifespan.startup.complete"})
                if self.on_startup is not None:
                    self.on_startup()
            elif message["type"] == "lifespan.shutdown":
                if self._ingesting is not None:
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
