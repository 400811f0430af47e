"""Throttling as PostHog's `posthog/rate_limit.py` does it: DRF sliding windows per personal
API key, whichever transport carried the key (PostHog #93790 made a key sent in the body
count too), HogQL queries on their own budget instead of the default one, and leaked-key
reports per client address (LeakedKeyReportThrottle)."""

from __future__ import annotations

import math
from collections import deque

from prefect_posthog.client import RateWindow, parse_rates
from prefect_posthog.emulator.common import ApiError
from prefect_posthog.emulator.constants import HOGQL_RATE_LIMIT, LEAKED_KEY_RATE_LIMIT


class Throttle:
    """DRF's SimpleRateThrottle, one history per window per personal key."""

    def __init__(self, windows: tuple[RateWindow, ...]) -> None:
        self.windows = tuple(windows)
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


def throttled(seconds: int) -> ApiError:
    """DRF's Throttled answer, with ``Retry-After``."""
    return ApiError(429, {"type": "throttled_error", "code": "throttled",
                          "detail": f"Request was throttled. Expected available in "
                                    f"{seconds} second{'s' if seconds != 1 else ''}.",
                          "attr": None}, {"Retry-After": str(seconds)})


class Throttles:
    """The emulator's throttle families: ``default``, ``hogql`` and ``leaked_key``; none of
    them throttles when rate limiting is off."""

    def __init__(self, windows: tuple[RateWindow, ...] | str) -> None:
        windows = parse_rates(windows) if isinstance(windows, str) else tuple(windows)
        on = bool(windows)
        self.families = {
            "default": Throttle(windows),
            "hogql": Throttle(parse_rates(HOGQL_RATE_LIMIT) if on else ()),
            "leaked_key": Throttle(parse_rates(LEAKED_KEY_RATE_LIMIT) if on else ()),
        }

    @property
    def windows(self) -> tuple[RateWindow, ...]:
        return self.families["default"].windows

    def check(self, family: str, key: str, now: float) -> None:
        """Raise the 429 when ``key`` has used its budget of ``family``."""
        throttle = self.families[family]
        if throttle.windows:
            wait = throttle.check(key, now)
            if wait is not None:
                raise throttled(max(1, math.ceil(wait)))

    def clear(self) -> None:
        for throttle in self.families.values():
            throttle.history.clear()
