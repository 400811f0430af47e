"""The one retry policy of the client, as a pure decision.

- Transport errors, 408, 429 and 5xx are retried with exponential backoff and jitter.
- ``Retry-After`` (seconds or an HTTP date) is a floor: the wait is never shorter; a 429's
  ``Retry-After`` also pauses every thread using the same key.
- Other 4xx are never retried.
- A 429 is safe to retry for every call: PostHog throttles before the view runs (DRF's
  ``APIView.initial`` runs ``check_throttles`` before the handler; PostHog's throttles are in
  ``posthog/rate_limit.py``).
- A non-idempotent call is never repeated after a failure that may have reached the view
  (transport error after sending, 408, 5xx): `OutcomeUnknownError` is raised instead.
- A ``Retry-After`` longer than `RetryPolicy.max_retry_after` is not slept through: the error
  is raised at once, so the caller (or a Prefect task retry) decides.
- A delete marked "gone on retry" may be repeated after such a failure: if the repeat
  answers "already gone", the delete is done.

`decide` holds all of this. It does no I/O, never sleeps and reads no clock: the request
loop (`_base.BaseClient`) sends, classifies what happened as an `Outcome`, asks `decide`, and
carries the `Decision` out.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from prefect_posthog.client._errors import OutcomeUnknownError

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass
class RetryPolicy:
    """How often and how long the client waits before repeating a request.

    Args:
        max_attempts: Attempts in all, the first included.
        backoff_base: First backoff in seconds; doubles each attempt.
        backoff_max: Upper bound of one computed backoff.
        jitter: Fraction of random extra wait added on top of each delay.
        max_retry_after: Longest ``Retry-After`` the client sleeps through; beyond it the
            error (`RateLimitedError` for a 429) is raised so the caller (or a Prefect task
            retry) decides.
    """

    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.25
    max_retry_after: float = 300.0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1).

        With ``Retry-After`` the wait is that value plus up to ``jitter`` of it, so it is
        never cut short; without it, exponential backoff with symmetric-up jitter.
        """
        backoff = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        base = max(backoff, retry_after or 0.0)
        return base * (1 + self.jitter * self.rng.random())


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Parse ``Retry-After`` as delta-seconds or an HTTP date; ``None`` if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


# -- what one attempt came to -------------------------------------------------------------

@dataclass(frozen=True)
class ErrorAnswer:
    """The server answered with an error status.

    Attributes:
        status: The HTTP status (400 or more).
        error: What the call raises if this answer is final (the typed error of the status).
        retry_after: The parsed ``Retry-After``, if the answer had one.
    """

    status: int
    error: Exception
    retry_after: float | None = None

    @property
    def reason(self) -> str:
        return f"HTTP {self.status}"

    @property
    def may_have_applied(self) -> bool:
        # 408 and 5xx can come after the view ran; a 429 or another 4xx proves it did not
        # change anything.
        return self.status in RETRYABLE_STATUSES and self.status != 429


@dataclass(frozen=True)
class TransportFailure:
    """No answer: the connection failed, timed out or was cut.

    Attributes:
        reason: The transport error's type name, e.g. ``ReadTimeout``.
        reached_server: Whether the request may have reached PostHog. Only
            ``ConnectError``, ``ConnectTimeout`` and ``PoolTimeout`` prove it did not.
        error: What the call raises when the attempts run out.
    """

    reason: str
    reached_server: bool
    error: Exception

    @property
    def retry_after(self) -> None:
        return None

    @property
    def may_have_applied(self) -> bool:
        return self.reached_server


Outcome = ErrorAnswer | TransportFailure


# -- what to do about it ------------------------------------------------------------------

@dataclass(frozen=True)
class Retry:
    """Send the request again after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True)
class Raise:
    """End the call with ``error``."""

    error: Exception


@dataclass(frozen=True)
class Return:
    """End the call successfully with ``value``."""

    value: Any = None


Decision = Retry | Raise | Return


def decide(
    policy: RetryPolicy,
    attempt: int,
    outcome: Outcome,
    *,
    operation: str,
    idempotent: bool,
    may_have_been_applied: bool,
    gone_on_retry: Callable[[Exception], bool] | None = None,
) -> Decision:
    """What the client does after a failed attempt.

    Args:
        policy: Attempts and backoff.
        attempt: The attempt that just failed, counting from 1.
        outcome: What that attempt came to.
        operation: The client method's name, for `OutcomeUnknownError`.
        idempotent: Whether repeating the call can change nothing more.
        may_have_been_applied: Whether an earlier attempt of this call may have been
            applied by the server.
        gone_on_retry: For a delete that may be repeated: tells, from the error of a
            repeat, that the object is already gone (so the earlier attempt applied it).

    Returns:
        `Retry` after a delay, `Raise` an error, or `Return` a value (``None``: a
        repeated delete found its object already gone).
    """
    retry_safe = idempotent or gone_on_retry is not None
    if isinstance(outcome, ErrorAnswer):
        if may_have_been_applied and gone_on_retry is not None and gone_on_retry(outcome.error):
            return Return(None)
        if outcome.status not in RETRYABLE_STATUSES:
            return Raise(outcome.error)
        if outcome.may_have_applied and not retry_safe:
            return Raise(OutcomeUnknownError(operation, outcome.reason))
        too_long = outcome.retry_after is not None and outcome.retry_after > policy.max_retry_after
        if attempt >= policy.max_attempts or too_long:
            return Raise(outcome.error)
    else:
        if outcome.reached_server and not retry_safe:
            return Raise(OutcomeUnknownError(operation, outcome.reason))
        if attempt >= policy.max_attempts:
            return Raise(outcome.error)
    return Retry(policy.delay(attempt, outcome.retry_after))


def shared_pause(outcome: Outcome) -> float | None:
    """Seconds every thread using the key must hold off: a 429's ``Retry-After``.

    PostHog's throttle counts per key, not per request, so the whole key waits, whatever
    this one call does next (even when it gives up).
    """
    if isinstance(outcome, ErrorAnswer) and outcome.status == 429 and outcome.retry_after:
        return outcome.retry_after
    return None
