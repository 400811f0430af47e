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

# `posthog/middleware.py` EnvironmentsRewriteMiddleware: settings API_ENVIRONMENTS_SUNSET_DATE.
API_ENVIRONMENTS_SUNSET_DATE = "2026-07-31"

# Django's feature_flags/local_evaluation was removed by PostHog #62229 (2026-06-08): the
# flags service's /flags/definitions serves local evaluation. The emulator answers as
# current PostHog; POST /_emulator/config {"legacy_local_evaluation": true} serves the old
# route again, as older self-hosted PostHog does.
LEGACY_LOCAL_EVALUATION = False
# Both services stamp a key's last_used_at only when it is empty or older than this.
LAST_USED_DEBOUNCE_SECONDS = 3600

# `posthog/clickhouse/client/limit.py` get_api_team_rate_limiter: 3 API queries per team
# at a time; a 4th retries (0.134 s, x1.5, at most 1.714 s apart) for up to 30 s, then 429.
QUERY_CONCURRENCY = 3
QUERY_QUEUE_SECONDS = 30.0
QUERY_RETRY_SECONDS = (0.134, 1.5, 1.714)
# `posthog/clickhouse/client/execute.py`: ClickHouse's max_query_size.
QUERY_MAX_BYTES = 1_048_576

# Rust capture's `config.rs` kafka_producer_message_max_bytes: the per-event limit.
CAPTURE_MESSAGE_LIMIT = 1_000_000

# `posthog/api/leaked_key.py`: the token's max_length, and LeakedKeyReportThrottle per IP.
LEAKED_KEY_TOKEN_MAX = 200
LEAKED_KEY_RATE_LIMIT = "10/min"
