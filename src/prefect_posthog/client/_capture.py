"""Sending ``$groupidentify`` events through PostHog's capture API.

Capture (PostHog's Rust service, `rust/capture/src/router.rs`) takes the project's public
token (``phc_...``) in the body, not a personal key, and has no per-key rate limit. Its
answer only means "accepted": ingestion applies events seconds (or minutes) later and
silently drops what it cannot attribute (`nodejs/src/ingestion/common/groups/
group-update.ts`), so callers verify through the management API.

Why not PostHog's Python SDK as the sender: its background consumer (`posthog/consumer.py`)
reports a failed batch only to an ``on_error`` callback, drops events when its queue is
full with a log warning, and ``sync_mode`` sends one event per request without retrying.
Exact per-item accounting needs to know which request carried which events and whether it
was accepted, so batches are sent here, one request each, through the client's own request
loop and retry policy. The SDK is used in the test suite as an independent client of the
emulator's capture endpoints.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from prefect_posthog.client._base import BaseClient, Call
from prefect_posthog.client._errors import (
    SHORT_FIELD,
    CaptureRejectedError,
    PostHogTransportError,
    keep_field,
)
from prefect_posthog.client._redaction import SECRETS
from prefect_posthog.client._retry import RETRYABLE_STATUSES, RetryPolicy

# PostHog Cloud serves capture on its ingestion hosts; the SDK rewrites the app hosts too.
_INGESTION_HOSTS = {"us.posthog.com": "us.i.posthog.com", "eu.posthog.com": "eu.i.posthog.com",
                    "app.posthog.com": "us.i.posthog.com"}
DISTINCT_ID = "prefect-posthog"


def capture_host_for(host: str) -> str:
    """The capture base URL for a PostHog app URL (Cloud's ingestion hosts, else the same)."""
    parts = urlsplit(host)
    mapped = _INGESTION_HOSTS.get(parts.hostname or "")
    return f"{parts.scheme}://{mapped}" if mapped else host.rstrip("/")


def group_identify_event(group_type: str, group_key: str, properties: dict[str, Any],
                         distinct_id: str = DISTINCT_ID) -> dict[str, Any]:
    """A ``$groupidentify`` event as PostHog's SDK builds it, with one stable distinct id
    (the SDK's default, a fresh UUID per call, would make one throwaway person each)."""
    return {"event": "$groupidentify", "distinct_id": distinct_id, "uuid": str(uuid.uuid4()),
            "timestamp": datetime.now(UTC).isoformat(),
            "properties": {"$group_type": group_type, "$group_key": group_key,
                           "$group_set": properties, "$lib": "prefect-posthog",
                           "$geoip_disable": True}}


class CaptureClient(BaseClient):
    """POSTs batches of events to ``/batch/`` with the project token, gzip-compressed.

    Args:
        host: Capture base URL (see `capture_host_for`).
        token: The project's capture token (``phc_...``).
        timeout: Seconds per request.
        retry: Transport errors, 408, 429 (at least ``Retry-After``) and 5xx are retried;
            resending a ``$groupidentify`` batch is safe (ingestion merges the same values).
        transport: Optional httpx transport (tests).
        sleep: Sleep function used between retries (tests pass one that does not wait).

    Examples:
        ```python
        from prefect_posthog.client import CaptureClient, capture_host_for, group_identify_event

        with CaptureClient(capture_host_for("https://us.posthog.com"), "phc_...") as capture:
            capture.send([group_identify_event("company", "acme", {"plan": "enterprise"})])
        ```
    """

    def __init__(self, host: str, token: str, *, timeout: float = 30.0,
                 retry: RetryPolicy | None = None, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.token = token
        super().__init__(httpx.Client(base_url=host.rstrip("/"), timeout=timeout,
                                      transport=transport), retry=retry, sleep=sleep)

    def __repr__(self) -> str:
        return f"CaptureClient(host={str(self._http.base_url).rstrip('/')!r})"

    def send(self, events: list[dict[str, Any]]) -> None:
        """Send one batch; returns once capture accepted it.

        Raises:
            CaptureRejectedError: Refused for good (bad token, malformed, too large).
            PostHogTransportError: Still failing after the retries.
        """
        # Level 1: a batch of 1,000 events shrinks ~8x in a few milliseconds, where the
        # default level 9 takes ~6x longer for ~10% less (a million events: ~20 s of CPU).
        body = gzip.compress(json.dumps({
            "api_key": self.token, "batch": events,
            "sent_at": datetime.now(UTC).isoformat()}).encode(), compresslevel=1)
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
                   "User-Agent": "prefect-posthog"}
        self._send(Call("capture", "POST", "/batch/", content=body, headers=headers))

    def _success(self, call: Call, response: httpx.Response) -> None:
        # Capture answers 200 `{"status": "Ok"}` when it took the batch; any other answer
        # below 400 is not that promise.
        if response.status_code != 200:
            raise CaptureRejectedError(response.status_code, _code(response))

    def _answer_error(self, call: Call, response: httpx.Response, *, path: str,
                      retry_after: float | None, attempt: int) -> Exception:
        status = response.status_code
        if status not in RETRYABLE_STATUSES:
            return CaptureRejectedError(status, _code(response))
        return PostHogTransportError(f"{call.operation}: HTTP {status} on {call.method} {path} "
                                     f"after {attempt} attempts")


def _code(response: httpx.Response) -> str | None:
    # Capture's error bodies are `{"status", "code", "error"}` (`rust/capture/src/api.rs`);
    # only the code is kept, redacted and cut like every field of an error text.
    try:
        code = response.json().get("code")
    except (ValueError, AttributeError):
        return None
    return keep_field(code, SECRETS.redact, SHORT_FIELD)
