"""Client-side rate limiter that keeps one personal API key under PostHog's budget.

PostHog throttles per personal API key with DRF sliding windows (480/minute and 4800/hour by
default: `BurstRateThrottle` and `SustainedRateThrottle` in `posthog/rate_limit.py`). A
request counts against a window from the moment PostHog sees it. The limiter reserves a slot
before sending and stamps it with the time the response came back, which is never earlier
than the moment the server recorded it; so as long as every in-flight and recent request is
counted, the server's window can never hold more than the limit.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
          "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class RateWindow:
    """At most ``limit`` requests in any ``period`` seconds."""

    limit: int
    period: float

    @classmethod
    def parse(cls, text: str) -> RateWindow:
        """Parse ``480/min``, ``4800/h`` or ``120/15s``.

        Raises:
            ValueError: When the text is not ``N/[M]unit``.
        """
        match = _RATE.match(text.lower())
        unit = match.group(3) if match else ""
        unit = unit if unit in _UNITS else unit.removesuffix("s")
        if not match or unit not in _UNITS or int(match.group(1)) < 1:
            raise ValueError(f"rate {text!r} is not like '480/min', '4800/h' or '120/15s'")
        multiple = int(match.group(2) or 1)
        return cls(int(match.group(1)), float(multiple * _UNITS[unit]))


def parse_rates(text: str) -> tuple[RateWindow, ...]:
    """Parse a comma separated list of windows, e.g. ``480/min,4800/h``."""
    return tuple(RateWindow.parse(part) for part in text.split(",") if part.strip())


class _Slot:
    __slots__ = ("done_at",)

    def __init__(self) -> None:
        self.done_at: float | None = None


class RateLimiter:
    """Sliding-window limiter shared by every thread (and client) using one key.

    Args:
        windows: The windows to respect together.
        clock: Monotonic clock, injectable for tests.
        sleep: Sleep function, injectable for tests.
    """

    def __init__(
        self,
        windows: tuple[RateWindow, ...],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.windows = tuple(windows)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots: deque[_Slot] = deque()
        self._paused_until = 0.0
        self._longest = max((w.period for w in self.windows), default=0.0)

    def _wait_needed(self, now: float) -> float:
        # Drop slots that finished before the longest window; they can no longer count.
        while self._slots and self._slots[0].done_at is not None and (
            self._slots[0].done_at <= now - self._longest
        ):
            self._slots.popleft()
        wait = max(0.0, self._paused_until - now)
        for window in self.windows:
            # Count slots inside this window; in-flight ones (done_at None) always count.
            counted: list[float] = []
            pending = 0
            for slot in self._slots:
                if slot.done_at is None:
                    pending += 1
                elif slot.done_at > now - window.period:
                    counted.append(slot.done_at)
            if pending + len(counted) < window.limit:
                continue
            excess = pending + len(counted) - window.limit + 1
            if excess > len(counted):
                # Only in-flight requests fill the window: wait for one to finish.
                wait = max(wait, 0.01)
                continue
            counted.sort()
            wait = max(wait, counted[excess - 1] + window.period - now)
        return wait

    def acquire(self) -> _Slot:
        """Block until a request may be sent, then reserve its slot."""
        if not self.windows:
            return _Slot()
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait_needed(now)
                if wait <= 0:
                    slot = _Slot()
                    self._slots.append(slot)
                    return slot
            self._sleep(min(wait, 5.0))

    def release(self, slot: _Slot) -> None:
        """Stamp a reserved slot with the time its response arrived."""
        with self._lock:
            slot.done_at = self._clock()

    def pause(self, seconds: float) -> None:
        """Hold every thread for ``seconds`` (PostHog asked so with ``Retry-After``)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)


_registry: dict[tuple[str, tuple[RateWindow, ...]], RateLimiter] = {}
_registry_lock = threading.Lock()


def shared_limiter(host: str, key: str, windows: tuple[RateWindow, ...]) -> RateLimiter:
    """Return the process-wide limiter for one personal API key on one host.

    The key is only hashed, never stored.
    """
    fingerprint = hashlib.sha256(f"{host}\0{key}".encode()).hexdigest()
    with _registry_lock:
        limiter = _registry.get((fingerprint, windows))
        if limiter is None:
            limiter = _registry[(fingerprint, windows)] = RateLimiter(windows)
        return limiter
