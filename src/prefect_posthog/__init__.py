"""prefect-posthog: Prefect tasks and flows for PostHog's management API.

Importing the package registers the `PostHogCredentials` block type with Prefect (the
``prefect.collections`` entry point points here).
"""

from importlib.metadata import PackageNotFoundError, version

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import PostHogClient, install_log_redaction

# Log records of runs that use this package never carry a secret it has handled.
install_log_redaction()

try:
    __version__ = version("prefect-posthog")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"

__all__ = ["PostHogClient", "PostHogCredentials", "__version__"]
