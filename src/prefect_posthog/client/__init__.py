"""A plain typed PostHog client, usable with or without Prefect.

Everything other code uses is exported here; the modules behind it are private:

- `PostHogClient` (``_client``) composes one class per PostHog area: ``_groups``,
  ``_sharing``, ``_project_secret_api_keys`` and ``_projects`` (project and HogQL query),
  on the management API's base (``_api``) and the one request loop (``_base``).
- `CaptureClient` (``_capture``) sends ``$groupidentify`` batches through the same loop.
- ``_retry`` is the retry policy as a pure decision (`decide`); ``_ratelimit`` the rate
  limiter; ``_limits`` PostHog's limits; ``_errors`` the typed errors; ``_redaction`` the
  secret registry; ``_models`` the response models; ``_deprecation`` PostHog's
  deprecation notices.

```python
from prefect_posthog.client import PostHogClient

with PostHogClient("https://us.posthog.com", "phx_...", project_id=12345) as posthog:
    print([t.group_type for t in posthog.list_group_types()])
```
"""

from prefect_posthog.client._api import PathStyle, check_personal_api_key, query_value
from prefect_posthog.client._capture import (
    DISTINCT_ID,
    CaptureClient,
    capture_host_for,
    group_identify_event,
)
from prefect_posthog.client._client import PostHogClient
from prefect_posthog.client._deprecation import (
    PostHogDeprecationWarning,
    reset_deprecation_warnings,
)
from prefect_posthog.client._errors import (
    AuthenticationError,
    CaptureFailedError,
    CaptureRejectedError,
    FeatureNotAvailableError,
    InvalidInputError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    PostHogAPIError,
    PostHogError,
    PostHogTransportError,
    PreconditionFailedError,
    ProjectNotFoundError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
    ValidationError,
)
from prefect_posthog.client._limits import (
    DEFAULT_RATE_LIMIT,
    DEFAULT_RATE_LIMITS,
    HOGQL_RATE_LIMITS,
    QUERY_MAX_ROWS,
)
from prefect_posthog.client._models import (
    ActivityLogEntry,
    ActivityPage,
    Group,
    GroupsPage,
    GroupType,
    Project,
    ProjectSecretAPIKey,
    ProjectSecretAPIKeysPage,
    PropertyCount,
    RelatedActor,
    SharePassword,
    SharePasswordCreated,
    SharingConfiguration,
    SharingResource,
)
from prefect_posthog.client._ratelimit import RateLimiter, RateWindow, parse_rates
from prefect_posthog.client._redaction import (
    MASK,
    SECRETS,
    RedactingFilter,
    Redactor,
    install_log_redaction,
)
from prefect_posthog.client._retry import (
    Decision,
    ErrorAnswer,
    Outcome,
    Raise,
    Retry,
    RetryPolicy,
    Return,
    TransportFailure,
    decide,
    parse_retry_after,
    shared_pause,
)

__all__ = [
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_RATE_LIMITS",
    "DISTINCT_ID",
    "HOGQL_RATE_LIMITS",
    "MASK",
    "QUERY_MAX_ROWS",
    "SECRETS",
    "ActivityLogEntry",
    "ActivityPage",
    "AuthenticationError",
    "CaptureClient",
    "CaptureFailedError",
    "CaptureRejectedError",
    "Decision",
    "ErrorAnswer",
    "FeatureNotAvailableError",
    "Group",
    "GroupType",
    "GroupsPage",
    "InvalidInputError",
    "NotFoundError",
    "Outcome",
    "OutcomeUnknownError",
    "PathStyle",
    "PermissionDeniedError",
    "PostHogAPIError",
    "PostHogClient",
    "PostHogDeprecationWarning",
    "PostHogError",
    "PostHogTransportError",
    "PreconditionFailedError",
    "Project",
    "ProjectNotFoundError",
    "ProjectSecretAPIKey",
    "ProjectSecretAPIKeysPage",
    "PropertyCount",
    "Raise",
    "RateLimitedError",
    "RateLimiter",
    "RateWindow",
    "RedactingFilter",
    "Redactor",
    "RelatedActor",
    "Retry",
    "RetryPolicy",
    "Return",
    "ServerError",
    "SharePassword",
    "SharePasswordCreated",
    "SharingConfiguration",
    "SharingResource",
    "TransportFailure",
    "UnexpectedResponseError",
    "ValidationError",
    "capture_host_for",
    "check_personal_api_key",
    "decide",
    "group_identify_event",
    "install_log_redaction",
    "parse_rates",
    "parse_retry_after",
    "query_value",
    "reset_deprecation_warnings",
    "shared_pause",
]
