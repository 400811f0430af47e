"""The emulator's own endpoints (not PostHog's), under ``/_emulator/``: one small handler
per action over the app, which holds the store, the throttles, the faults, the ingestion
pipeline and the request log.

- ``GET health`` → ``{"ok": true}``
- ``GET state`` → the store's data; ``POST save`` → ``{"saved": path}`` (the state file)
- ``GET requests?since=SEQ`` → the request log; ``DELETE requests`` → 204
- ``POST seed`` (see `seed.apply_seed`) → ids and generated secrets
- ``POST reset`` → an empty project 1, the starting switches and personal keys
- ``POST faults`` → the HTTP fault plan (`faults.FaultPlan`)
- ``POST config`` → switches (`store.Config`): ``advanced_permissions``,
  ``public_sharing_allowed``, ``property_definitions_route``, ``quota_limited`` (the flags
  quota is used up: 402), ``legacy_local_evaluation`` (Django's removed
  feature_flags/local_evaluation still served), ``query_seconds`` (how long each API query
  runs), ``query_queue_seconds`` (how long a query waits for one of the team's slots),
  ``query_concurrency`` (slots per team); and ``rate_limit`` ("" = off), ``ingestion_lag``
- ``GET ingestion`` → stats (``requests``, ``events``, ``applied``, ``dropped``,
  ``ignored``, ``dropped_reasons``), ``pending`` and ``lag``; ``POST ingestion`` → the
  ingestion fault plan, ``flush: true`` applies everything queued now
- ``GET queries`` → the API query slots: ``running`` per team, ``peak`` (most at once)
  and ``throttled`` (429s for want of a slot)
- ``POST clock {"advance": seconds}`` → ``{"now": t}``
- ``POST webhook`` / ``GET webhook``: a notification sink for local runs
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from prefect_posthog.emulator.common import ApiError, Request, lax_bool
from prefect_posthog.emulator.faults import INGESTION_FAULT_KINDS, FaultPlan
from prefect_posthog.emulator.ingestion import Ingestion
from prefect_posthog.emulator.routing import Route
from prefect_posthog.emulator.seed import apply_seed
from prefect_posthog.emulator.store import Config
from prefect_posthog.emulator.throttle import Throttles

if TYPE_CHECKING:
    from prefect_posthog.emulator.app import EmulatorApp

# Switches a seeded organization may also set; the admin switch wins over them.
_ORGANIZATION_SWITCHES = ("advanced_permissions", "public_sharing_allowed",
                          "property_definitions_route")
_SETTINGS = {f.name: type(f.default) for f in dataclasses.fields(Config)}


def health(app: EmulatorApp, req: Request) -> tuple[int, Any]:
    return 200, {"ok": True}


def get_state(app: EmulatorApp, req: Request) -> tuple[int, Any]:
    return 200, json.loads(app.state.dump())["data"]


def list_requests(app: EmulatorApp, req: Request) -> tuple[int, Any]:
    since = int(req.query.get("since", 0))
    return 200, [r for r in app.requests if r["seq"] > since]


def clear_requests(app: EmulatorApp, req: Request) -> tuple[int, Any]:
    app.requests.clear()
    return 204, None


def seed(app: EmulatorApp, req: Request) -> tuple[int, Any]:
    return 200, apply_seed(app.state, req.body)


def reset(app: EmulatorApp, req: Request) -> tuple[int, Any]:
    app.state.reset(dataclasses.replace(app.initial_config))
    # The rate limit and ingestion lag a test configured go too: the next test starts
    # from the emulator's own, whichever test ran before it.
    app.throttles = Throttles(app.initial_rate_limit)
    app.ingestion = Ingestion(app.state, lag=app.initial_ingestion_lag)
    app.faults = FaultPlan()
    app.requests.clear()
    app.query_slots.peak = app.query_slots.throttled = 0
    return 200, {"ok": True}


def set_faults(app: EmulatorApp, req: Request) -> tuple[int, Any]:
    app.faults = FaultPlan.from_spec(req.body)
    return 200, {"ok": True}


def _setting(name: str, value: Any) -> Any:
    kind = _SETTINGS[name]
    if kind is bool:
        value = value if isinstance(value, bool) else lax_bool(value)
        if value is None:
            raise ValueError(f"{name} must be true or false")
        return value
    return kind(value)


def configure(app: EmulatorApp, req: Request) -> tuple[int, Any]:
    body = req.body
    unknown = sorted(set(body) - set(_SETTINGS) - {"rate_limit", "ingestion_lag"})
    if unknown:
        raise ApiError(400, {"error": f"unknown config key(s) {unknown}; known: "
                                      f"{', '.join([*_SETTINGS, 'rate_limit', 'ingestion_lag'])}"})
    for name in _SETTINGS:
        if name in body:
            setattr(app.state.config, name, _setting(name, body[name]))
            if name in _ORGANIZATION_SWITCHES:
                for org in app.state.data["organizations"].values():
                    org.pop(name, None)
    if "rate_limit" in body:
        app.throttles = Throttles(body["rate_limit"] or "")
    if "ingestion_lag" in body:
        app.ingestion.lag = float(body["ingestion_lag"])
    return 200, {"ok": True}


def get_ingestion(app: EmulatorApp, req: Request) -> tuple[int, Any]:
    ingestion = app.ingestion
    return 200, {**ingestion.stats, "pending": ingestion.pending(), "lag": ingestion.lag}


def set_ingestion(app: EmulatorApp, req: Request) -> tuple[int, Any]:
    app.ingestion.faults = FaultPlan.from_spec(req.body, INGESTION_FAULT_KINDS)
    if req.body.get("flush"):
        app.ingestion.apply_due(float("inf"))
    return 200, {"ok": True}


def get_queries(app: EmulatorApp, req: Request) -> tuple[int, Any]:
    return 200, app.query_slots.stats()


def advance_clock(app: EmulatorApp, req: Request) -> tuple[int, Any]:
    app.state.clock_offset += float(req.body.get("advance", 0))
    return 200, {"now": app.state.now()}


def add_webhook(app: EmulatorApp, req: Request) -> tuple[int, Any]:
    app.webhook.append(req.body)
    return 200, {"ok": True}


def list_webhook(app: EmulatorApp, req: Request) -> tuple[int, Any]:
    return 200, list(app.webhook)


def save(app: EmulatorApp, req: Request) -> tuple[int, Any]:
    app.save()
    return 200, {"saved": app.state_file}


ROUTES = [Route(method, path, handler, "admin", logged=False) for method, path, handler in [
    ("*", "health", health),
    ("GET", "state", get_state),
    ("GET", "requests", list_requests),
    ("DELETE", "requests", clear_requests),
    ("POST", "seed", seed),
    ("POST", "reset", reset),
    ("POST", "faults", set_faults),
    ("POST", "config", configure),
    ("GET", "ingestion", get_ingestion),
    ("POST", "ingestion", set_ingestion),
    ("GET", "queries", get_queries),
    ("POST", "clock", advance_clock),
    ("POST", "webhook", add_webhook),
    ("GET", "webhook", list_webhook),
    ("POST", "save", save),
]]
