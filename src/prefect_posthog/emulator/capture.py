"""The capture endpoints (Rust capture's "v0" family: `rust/capture/src/router.rs`,
`api.rs`, `payload/analytics.rs`): what they accept and refuse, and how they answer.

Capture answers at once; accepted events go to the ingestion pipeline (`ingestion`). A
well-formed but unknown token is accepted with 200 and dropped, as PostHog does. An event
over the Kafka message limit fails its whole request with 413, yet the events before it in
the request have already gone on (`sinks/kafka.rs`: "acked-before-failure events").
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from typing import Any
from urllib.parse import parse_qsl

from prefect_posthog.emulator.common import Request
from prefect_posthog.emulator.constants import (
    CAPTURE_BATCH_LIMIT,
    CAPTURE_EVENT_LIMIT,
    CAPTURE_MESSAGE_LIMIT,
)
from prefect_posthog.emulator.ingestion import Ingestion
from prefect_posthog.emulator.projects import team_of_token
from prefect_posthog.emulator.routing import Route

_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_\-]{3,200}$")


class CaptureError(Exception):
    """A refusal, with `api.rs`'s ``{"status", "code", "error"}`` body."""

    def __init__(self, status: int, code: str, error: str) -> None:
        super().__init__(code)
        self.status, self.code, self.error = status, code, error

    def body(self) -> dict[str, Any]:
        return {"status": self.status, "code": self.code, "error": self.error}


def _too_big(limit: int) -> CaptureError:
    return CaptureError(413, "payload_too_large", "maximum event size exceeded: Request body "
                        f"exceeds limit of {limit} bytes")


def _first_oversized(events: list[dict], body_size: int) -> int | None:
    """The index of the first event over the message limit, if any."""
    if body_size <= CAPTURE_MESSAGE_LIMIT:
        return None  # no event is larger than the whole body: nothing to measure
    for index, event in enumerate(events):
        if len(json.dumps(event, separators=(",", ":")).encode()) > CAPTURE_MESSAGE_LIMIT:
            return index
    return None


def capture(ingestion: Ingestion, req: Request) -> tuple[int, Any]:
    """One capture request: ``(status, body)`` as PostHog's capture service answers."""
    route = req.params["route"]
    try:
        limit = CAPTURE_BATCH_LIMIT if route == "batch" else CAPTURE_EVENT_LIMIT
        if len(req.raw) > limit:
            raise _too_big(limit)
        body = _decode(req, limit)
        events, token = _parse(body)
    except CaptureError as err:
        return err.status, err.body()
    team = team_of_token(ingestion.state, token)
    oversized = _first_oversized(events, len(body))
    ingestion.accept(int(team["id"]) if team else None, events[:oversized], route)
    if oversized is not None:
        ingestion.count("message_size_too_large")
        ingestion.count("after_message_size_too_large", len(events) - oversized - 1)
        error = CaptureError(413, "payload_too_large", "maximum event size exceeded: Event "
                             "rejected by kafka during send")
        return error.status, error.body()
    if req.query.get("beacon") == "1":
        return 204, None
    return 200, {"status": "Ok"}


def _decode(req: Request, limit: int) -> bytes:
    """The JSON text: gzip detected by its magic bytes (or hinted), form ``data=`` base64."""
    raw = req.raw
    if raw[:2] == b"\x1f\x8b" or req.query.get("compression") in ("gzip", "gzip-js"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError):
            raise CaptureError(400, "request_decoding_error", "invalid gzip body") from None
        if len(raw) > limit:
            raise _too_big(limit)
    if "application/x-www-form-urlencoded" in req.headers.get("content-type", ""):
        form = dict(parse_qsl(raw.decode("utf-8", "replace")))
        try:
            raw = base64.b64decode(form.get("data", ""))
        except ValueError:
            raise CaptureError(400, "request_decoding_error", "invalid form data") from None
    return raw


def _events(body: Any) -> tuple[list, Any]:
    """The events and the batch-level token, from serde's untagged RawRequest shapes."""
    if isinstance(body, list):
        return body, None
    if isinstance(body, dict) and "batch" in body:
        return body["batch"], body.get("api_key") or body.get("token")
    if isinstance(body, dict):
        return [body], None
    raise CaptureError(400, "request_parsing_error", "unexpected body")


def _parse(raw: bytes) -> tuple[list[dict], str]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise CaptureError(400, "request_parsing_error", "invalid JSON body") from None
    events, batch_token = _events(body)
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


_PATHS = r"(?P<route>batch|e|i/v0/e|capture|track|engage)"
ROUTES = [Route(method, _PATHS, capture, "capture", logged=False) for method in ("POST", "GET")]
