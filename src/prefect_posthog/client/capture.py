"""Sending ``$groupidentify`` events through PostHog's capture API (SPEC §6.1, §6.3).

Capture takes the project's public token (``phc_...``), not a personal key, and has no
per-key rate limit. Its answer only means "accepted": ingestion applies events seconds (or
minutes) later and silently drops what it cannot attribute, so callers verify through the
management API.

Why not PostHog's Python SDK as the sender: its background consumer reports a failed batch
only to an ``on_error`` callback, drops events when its queue is full with a log warning,
and ``sync_mode`` sends one event per request without retrying. Exact per-item accounting
needs to know which request carried which events and whether it was accepted, so batches
are sent here, one request each, with the same retry rules as the client. The SDK is used
in the test suite as an independent client of the emulator's capture endpoints.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx

from prefect_posthog.client.errors import PostHogError, PostHogTransportError
from prefect_posthog.client.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after

logger = logging.getLogger("prefect_posthog.client")

# PostHog Cloud serves capture on its ingestion hosts; the SDK rewrites the app hosts too.
_INGESTION_HOSTS = {"us.posthog.com": "us.i.posthog.com", "eu.posthog.com": "eu.i.posthog.com",
                    "app.posthog.com": "us.i.posthog.com"}
DISTINCT_ID = "prefect-posthog"


class CaptureRejectedError(PostHogError):
    """Capture refused a batch for good (a 4xx other than 408/429): it was not accepted.

    Attributes:
        status_code: The HTTP status.
        code: Capture's error code, e.g. ``ingest_key_unknown`` or ``payload_too_large``.
    """

    def __init__(self, status_code: int, code: str | None) -> None:
        self.status_code, self.code = status_code, code
        super().__init__(f"capture refused the batch: HTTP {status_code}"
                         + (f" {code}" if code else ""))

    def __reduce__(self) -> tuple[Any, ...]:
        return (CaptureRejectedError, (self.status_code, self.code))


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
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "properties": {"$group_type": group_type, "$group_key": group_key,
                           "$group_set": properties, "$lib": "prefect-posthog",
                           "$geoip_disable": True}}


class CaptureClient:
    """POSTs batches of events to ``/batch/`` with the project token, gzip-compressed.

    Args:
        host: Capture base URL (see `capture_host_for`).
        token: The project's capture token (``phc_...``).
        timeout: Seconds per request.
        retry: Transport errors, 408, 429 (at least ``Retry-After``) and 5xx are retried;
            resending a ``$groupidentify`` is safe (ingestion merges the same values).
        transport: Optional httpx transport (tests).
        sleep: Sleep between retries (tests).
    """

    def __init__(self, host: str, token: str, *, timeout: float = 30.0,
                 retry: RetryPolicy | None = None, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.token = token
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx.Client(base_url=host.rstrip("/"), timeout=timeout,
                                  transport=transport)

    def __enter__(self) -> CaptureClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def send(self, events: list[dict[str, Any]]) -> None:
        """Send one batch; returns once capture accepted it.

        Raises:
            CaptureRejectedError: Refused for good (bad token, malformed, too large).
            PostHogTransportError: Still failing after the retries.
        """
        body = gzip.compress(json.dumps({
            "api_key": self.token, "batch": events,
            "sent_at": datetime.now(timezone.utc).isoformat()}).encode())
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip",
                   "User-Agent": "prefect-posthog"}
        for attempt in range(1, self.retry.max_attempts + 1):
            retry_after = None
            try:
                response = self._http.post("/batch/", content=body, headers=headers)
            except httpx.TransportError as exc:
                reason = type(exc).__name__
            else:
                if response.status_code == 200:
                    return
                if response.status_code not in RETRYABLE_STATUSES:
                    try:
                        code = response.json().get("code")
                    except (ValueError, AttributeError):
                        code = None
                    raise CaptureRejectedError(response.status_code, code)
                reason = f"HTTP {response.status_code}"
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt < self.retry.max_attempts:
                delay = self.retry.delay(attempt, retry_after)
                logger.warning("capture: %s, retrying in %.1fs", reason, delay)
                self._sleep(delay)
        raise PostHogTransportError(f"capture: {reason} after {self.retry.max_attempts} "
                                    "attempts")
