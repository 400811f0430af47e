"""The one retry policy of the client.

- Transport errors, 408, 429 and 5xx are retried with exponential backoff and jitter.
- ``Retry-After`` (seconds or an HTTP date) is a floor: the wait is never shorter.
- Other 4xx are never retried.
- A 429 is safe to retry for every call: PostHog throttles before the view runs.
- A non-idempotent call is never repeated after a failure that may have reached the view
  (transport error after sending, 408, 5xx): the client raises `OutcomeUnknownError` instead.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

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
            `RateLimitedError` is raised so the caller (or a Prefect task retry) decides.
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
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())
