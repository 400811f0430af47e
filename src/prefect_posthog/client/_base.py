"""The one request loop, shared by the management client and the capture client.

Each attempt: the ``before_request`` hook, a slot of the rate limiter, the request, the
outcome classified (an answer or a transport failure), then the pure `decide` of
`_retry` says whether to retry, raise or return, and the loop sleeps or ends. What a
success means, and which error an error status becomes, is the subclass's part.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Self
from urllib.parse import urlsplit

import httpx

from prefect_posthog.client._deprecation import notice_deprecation
from prefect_posthog.client._errors import PostHogTransportError
from prefect_posthog.client._ratelimit import RateLimiter
from prefect_posthog.client._redaction import SECRETS, Redactor
from prefect_posthog.client._retry import (
    ErrorAnswer,
    Raise,
    Retry,
    RetryPolicy,
    TransportFailure,
    decide,
    parse_retry_after,
    shared_pause,
)

logger = logging.getLogger("prefect_posthog.client")

# Transport failures that prove the request never reached PostHog.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(slots=True)
class Call:
    """One logical request: what to send and how it may be repeated.

    Attributes:
        operation: The client method's name, used in errors and log lines.
        path: Below the client's base URL, or an absolute URL (another of PostHog's
            services, e.g. the flags service on the ingestion host).
        idempotent: Whether repeating it can change nothing more.
        gone_on_retry: For a delete that may be repeated after a failure that may have
            applied it: tells, from the repeat's error, that the object is already gone.
        limiter: The rate limiter whose slot each attempt takes, if any.
    """

    operation: str
    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] | None = None
    idempotent: bool = True
    gone_on_retry: Callable[[Exception], bool] | None = None
    limiter: RateLimiter | None = None


class BaseClient:
    """An httpx client, the retry policy and the request loop.

    Subclasses say what an answer means through `_success` and `_answer_error`.

    Args:
        http: The httpx client requests go through (its ``base_url`` included).
        retry: The retry policy.
        sleep: Sleep function used between retries.
        before_request: Called before every attempt.

    Attributes:
        retry: The retry policy.
        redactor: The process's secret registry, which every error text passes through.
    """

    redactor: Redactor = SECRETS

    def __init__(self, http: httpx.Client, *, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 before_request: Callable[[], None] | None = None) -> None:
        self.retry = retry or RetryPolicy()
        self._http = http
        self._sleep = sleep
        self._before_request = before_request
        # The last answer's `Date` header and the local time it arrived (parsed on demand).
        self._server_date: tuple[str, float] | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def server_now(self) -> datetime:
        """PostHog's clock: the last answer's ``Date`` header plus the time since it arrived.

        Timestamps PostHog writes (``last_used_at``, ``last_rolled_at``) are on its clock,
        so durations measured against them use this, not the local clock (which may be
        skewed). Before any answer, or without a readable header, the local clock (UTC).
        """
        if self._server_date is not None:
            header, received = self._server_date
            try:
                date = parsedate_to_datetime(header)
            except (TypeError, ValueError):
                date = None
            if date is not None and date.tzinfo is not None:
                return date + timedelta(seconds=time.time() - received)
        return datetime.now(UTC)

    # -- what an answer means (the subclass's part) ----------------------------------------

    def _success(self, call: Call, response: httpx.Response) -> Any:
        """The call's value for an answer below 400 (may raise for a body it cannot use)."""
        raise NotImplementedError

    def _answer_error(self, call: Call, response: httpx.Response, *, path: str,
                      retry_after: float | None, attempt: int) -> Exception:
        """The error the call raises if this error answer (400 or more) is final."""
        raise NotImplementedError

    # -- the loop -------------------------------------------------------------------------

    def _send(self, call: Call) -> Any:
        """Send ``call`` under the retry policy and its rate limiter; return its value."""
        url_path = (urlsplit(call.path).path if "://" in call.path
                    else self._http.base_url.path + call.path.lstrip("/"))
        attempt = 0
        applied = False  # whether an earlier attempt may have been applied
        while True:
            attempt += 1
            outcome = self._attempt(call, attempt, url_path)
            if isinstance(outcome, httpx.Response):
                return self._success(call, outcome)
            pause = shared_pause(outcome)
            if pause and call.limiter is not None:
                call.limiter.pause(pause)
            decision = decide(self.retry, attempt, outcome, operation=call.operation,
                              idempotent=call.idempotent, may_have_been_applied=applied,
                              gone_on_retry=call.gone_on_retry)
            if isinstance(decision, Raise):
                raise decision.error from None
            if not isinstance(decision, Retry):
                return decision.value
            applied = applied or outcome.may_have_applied
            logger.warning("%s: %s, retrying in %.1fs (attempt %d)", call.operation,
                           outcome.reason, decision.delay, attempt)
            self._sleep(decision.delay)

    def _attempt(self, call: Call, attempt: int,
                 url_path: str) -> httpx.Response | ErrorAnswer | TransportFailure:
        """One attempt: a successful response, or what the failure came to."""
        if self._before_request is not None:
            self._before_request()
        window = call.limiter
        slot = window.acquire() if window is not None else None
        try:
            response = self._http.request(call.method, call.path, params=call.params,
                                          json=call.json, content=call.content,
                                          headers=call.headers)
        except httpx.TransportError as exc:
            reason = type(exc).__name__
            return TransportFailure(reason, not isinstance(exc, NOT_SENT), PostHogTransportError(
                f"{call.operation}: {reason} on {call.method} {url_path} after {attempt} "
                "attempts"))
        finally:
            if slot is not None and window is not None:
                window.release(slot)
        status = response.status_code
        date = response.headers.get("date")
        if date:
            self._server_date = (date, time.time())
        logger.debug("%s %s -> %d (attempt %d)", call.method, url_path, status, attempt)
        notice_deprecation(url_path, response.headers)
        if status < 400:
            return response
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        error = self._answer_error(call, response, path=url_path, retry_after=retry_after,
                                   attempt=attempt)
        return ErrorAnswer(status, error, retry_after)
