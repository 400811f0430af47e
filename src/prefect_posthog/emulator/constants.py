"""The emulator's numbers, each defined once: PostHog's limits it enforces and its defaults."""

from __future__ import annotations

# PostHog's `posthog/rate_limit.py`: BurstRateThrottle and SustainedRateThrottle, per
# personal API key; HogQL queries replace both with HogQLQueryThrottle.
DEFAULT_RATE_LIMIT = "480/min,4800/h"
HOGQL_RATE_LIMIT = "120/h"

DEFAULT_PORT = 8010
DEFAULT_INGESTION_LAG = 3.0  # seconds from capture to the groups store (not PostHog's)
REQUEST_LOG_SIZE = 200_000  # entries kept by GET /_emulator/requests

# `ee/clickhouse/views/groups.py`: the list's fixed page and the key's max_length.
GROUPS_PAGE_SIZE = 100
GROUP_KEY_MAX = 400
PROPERTY_VALUES_MAX = 20
# Node ingestion's `group-type-manager.ts`: indexes 0-4, a sixth type is ignored.
MAX_GROUP_TYPES = 5

# `posthog/hogql/constants.py`: rows without LIMIT, and MAX_SELECT_RETURNED_ROWS.
QUERY_DEFAULT_ROWS = 100
QUERY_MAX_ROWS = 50_000

# Rust capture's `router.rs`: the body limits of /batch and of the other routes.
CAPTURE_BATCH_LIMIT = 20 * 1024 * 1024
CAPTURE_EVENT_LIMIT = 2 * 1024 * 1024

# Settings SHARING_TOKEN_GRACE_PERIOD_SECONDS: a refreshed link keeps working this long.
SHARING_GRACE_SECONDS = 300

# `posthog/api/project_secret_api_key.py`: label max_length and keys per team.
PSAK_LABEL_MAX = 40
PSAK_MAX_PER_TEAM = 50
