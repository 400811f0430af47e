"""PostHog's limits the client keeps to, written down once."""

from __future__ import annotations

from prefect_posthog.client._ratelimit import RateWindow, parse_rates

# PostHog's default throttles per personal API key: `BurstRateThrottle` 480/minute and
# `SustainedRateThrottle` 4800/hour (`posthog/rate_limit.py`).
DEFAULT_RATE_LIMIT = "480/min,4800/h"
DEFAULT_RATE_LIMITS = parse_rates(DEFAULT_RATE_LIMIT)

# A HogQL query replaces those throttles with its own per-key budget: `HogQLQueryThrottle`,
# 120/hour (`posthog/rate_limit.py`, applied by `posthog/api/query.py`).
HOGQL_RATE_LIMITS = (RateWindow(120, 3600.0),)

# HogQL caps a query's LIMIT at `MAX_SELECT_RETURNED_ROWS` (`posthog/hogql/constants.py`).
QUERY_MAX_ROWS = 50_000
