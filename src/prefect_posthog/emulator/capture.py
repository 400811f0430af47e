"""Capture and ingestion (SPEC §6): the event endpoints and the `$groupidentify` pipeline.

Capture answers at once, as PostHog's Rust capture service does; ingestion applies accepted
events to the groups store later (``lag`` seconds), so a write is visible through the
management API only after that. A well-formed but unknown token is accepted with 200 and
dropped, as PostHog does. Ingestion faults: ``dropped`` (accepted, never applied) and
``delayed`` (applied ``delay_seconds`` late), per request.
"""

from __future__ import annotations

import base64
import gzip
import heapq
import itertools
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from prefect_posthog.emulator.common import group_id
from prefect_posthog.emulator.state import PostHogState

CAPTURE_PATH = re.compile(r"^/(?P<route>batch|e|i/v0/e|capture|track|engage)/?$")
BATCH_LIMIT = 20 * 1024 * 1024
EVENT_LIMIT = 2 * 1024 * 1024
MAX_GROUP_TYPES = 5
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-]{3,200}$")
INGESTION_FAULTS = ("dropped", "delayed")


class CaptureError(Exception):
    def __init__(self, status: int, code: str, error: str) -> None:
        super().__init__(code)
        self.status, self.code, self.error = status, code, error

    def body(self) -> dict[str, Any]:
        return {"status": self.status, "code": self.code, "error": self.error}


@dataclass
class IngestionFaults:
    """Faults of the ingestion pipeline, drawn per accepted request."""

    kinds: tuple[str, ...] = ()
    rate: float = 0.0
    seed: int = 0
    delay_seconds: float = 30.0
    schedule: list[dict] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        bad = [k for k in (*self.kinds, *(s["fault"] for s in self.schedule))
               if k not in INGESTION_FAULTS]
        if bad:
            raise ValueError(f"unknown ingestion fault(s) {bad}; choose from "
                             + ", ".join(INGESTION_FAULTS))
        self._rng = random.Random(self.seed)

    def pick(self) -> str | None:
        for entry in self.schedule:
            if entry["count"] > 0:
                entry["count"] -= 1
                return entry["fault"]
        if self.kinds and self._rng.random() < self.rate:
            return self._rng.choice(self.kinds)
        return None


@dataclass
class Ingestion:
    """Accepts capture requests and applies their `$groupidentify` events after a lag."""

    state: PostHogState
    lag: float = 3.0
    faults: IngestionFaults = field(default_factory=IngestionFaults)
    stats: dict[str, int] = field(default_factory=lambda: {
        "requests": 0, "events": 0, "applied": 0, "dropped": 0, "ignored": 0})
    _queue: list[tuple[float, int, int, dict]] = field(default_factory=list)
    _seq: itertools.count = field(default_factory=itertools.count)

    # -- capture ------------------------------------------------------------------------

    def capture(self, route: str, query: dict[str, str], headers: dict[str, str],
                raw: bytes) -> tuple[int, Any]:
        """One capture request: ``(status, body)`` as PostHog's capture service answers."""
        try:
            limit = BATCH_LIMIT if route == "batch" else EVENT_LIMIT
            if len(raw) > limit:
                raise CaptureError(413, "payload_too_large", "payload too large")
            events, token = self._parse(raw, query, headers, limit)
        except CaptureError as err:
            return err.status, err.body()
        self.stats["requests"] += 1
        self.stats["events"] += len(events)
        team = self._team_of(token)
        fault = self.faults.pick()
        if team is None or fault == "dropped":
            self.stats["dropped"] += len(events)  # accepted and silently dropped
        else:
            due = self.state.now() + self.lag + (
                self.faults.delay_seconds if fault == "delayed" else 0.0)
            for event in events:
                heapq.heappush(self._queue, (due, next(self._seq), team, event))
        if query.get("beacon") == "1":
            return 204, None
        return 200, {"status": "Ok"}

    def _parse(self, raw: bytes, query: dict[str, str], headers: dict[str, str],
               limit: int) -> tuple[list[dict], str]:
        if raw[:2] == b"\x1f\x8b" or query.get("compression") in ("gzip", "gzip-js"):
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError):
                raise CaptureError(400, "request_decoding_error", "invalid gzip body") from None
            if len(raw) > limit:
                raise CaptureError(413, "payload_too_large", "payload too large")
        if "application/x-www-form-urlencoded" in headers.get("content-type", ""):
            form = dict(parse_qsl(raw.decode("utf-8", "replace")))
            try:
                raw = base64.b64decode(form.get("data", ""))
            except ValueError:
                raise CaptureError(400, "request_decoding_error", "invalid form data") from None
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise CaptureError(400, "request_parsing_error", "invalid JSON body") from None
        batch_token = None
        if isinstance(body, list):
            events = body
        elif isinstance(body, dict) and "batch" in body:
            events = body["batch"]
            batch_token = body.get("api_key") or body.get("token")
        elif isinstance(body, dict):
            events = [body]
        else:
            raise CaptureError(400, "request_parsing_error", "unexpected body")
        if not isinstance(events, list) or not events:
            raise CaptureError(400, "empty_batch", "empty batch")
        tokens = set()
        for event in events:
            if not isinstance(event, dict):
                raise CaptureError(400, "request_parsing_error", "an event is not an object")
            if not event.get("event"):
                raise CaptureError(400, "missing_event_name", "event name is missing")
            if event.get("distinct_id") in (None, "") and event.get("$distinct_id") in (None, ""):
                raise CaptureError(400, "missing_distinct_id", "distinct_id is missing")
            props = event.get("properties") if isinstance(event.get("properties"), dict) else {}
            tokens.add(batch_token or event.get("token") or event.get("$token")
                       or event.get("api_key") or props.get("token"))
        tokens.discard(None)
        if not tokens:
            raise CaptureError(401, "ingest_key_required", "API key is missing")
        if len(tokens) > 1:
            raise CaptureError(400, "unroutable_events", "events with different tokens")
        token = str(tokens.pop())
        if not _TOKEN_SHAPE.match(token):
            raise CaptureError(403, "ingest_key_unknown", "API key is not valid")
        return events, token

    def _team_of(self, token: str) -> int | None:
        for project in self.state.data["projects"].values():
            if project.get("api_token") == token:
                return int(project["id"])
        return None

    # -- ingestion ----------------------------------------------------------------------

    def apply_due(self, now: float | None = None) -> int:
        """Apply every queued event whose time has come (call under the state lock)."""
        now = self.state.now() if now is None else now
        applied = 0
        while self._queue and self._queue[0][0] <= now:
            _, _, team, event = heapq.heappop(self._queue)
            if self._apply(team, event):
                applied += 1
        self.stats["applied"] += applied
        return applied

    def pending(self) -> int:
        return len(self._queue)

    def _apply(self, team: int, event: dict) -> bool:
        props = event.get("properties") if isinstance(event.get("properties"), dict) else {}
        if event.get("event") != "$groupidentify":
            self.stats["ignored"] += 1
            return False
        group_type, key = props.get("$group_type"), props.get("$group_key")
        group_set = props.get("$group_set") or {}
        if not group_type or key in (None, "") or not isinstance(group_set, dict):
            self.stats["ignored"] += 1
            return False
        index = self._type_index(team, str(group_type))
        if index is None:  # a sixth type is silently ignored (SPEC §6.4)
            self.stats["ignored"] += 1
            return False
        key = str(key)
        group = self.state.data["groups"].get(group_id(team, index, key))
        if group is None:
            self.state._new_group(team, index, key, group_set, self.state.now())
        else:  # shallow merge: incoming keys overwrite, others are kept
            group["group_properties"].update(group_set)
        return True

    def _type_index(self, team: int, name: str) -> int | None:
        types = self.state.data["group_types"].setdefault(str(team), {})
        for index, existing in types.items():
            if existing == name:
                return int(index)
        free = [i for i in range(MAX_GROUP_TYPES) if str(i) not in types]
        if not free:
            return None
        types[str(free[0])] = name
        return free[0]
