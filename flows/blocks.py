"""Blocks given to a flow either as instances (Python, UI block picker) or by name.

Names are what deployments store: ``prefect deploy`` would otherwise resolve a block
placeholder into the block's data — secret included — and keep it in the deployment's
parameters. Error messages never echo the given string: a user could have typed a secret
where a name belongs.
"""

from __future__ import annotations

from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.core import Block
from prefect.blocks.system import Secret

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import InvalidInputError


def load_credentials(credentials: PostHogCredentials | str) -> PostHogCredentials:
    """The credentials block itself, or the one saved under that name."""
    if isinstance(credentials, PostHogCredentials):
        return credentials
    try:
        return PostHogCredentials.load(credentials, _sync=True)  # type: ignore[return-value]
    except (ValueError, RuntimeError):
        raise InvalidInputError("credentials", "no PostHog Credentials block has that name; "
                                "create one in the UI or with PostHogCredentials(...).save(name)"
                                ) from None


def load_notification(block: NotificationBlock | str | None) -> NotificationBlock | None:
    """A notification block, or one saved as ``<block-type-slug>/<name>``."""
    if block is None or isinstance(block, NotificationBlock):
        return block
    if "/" not in block:
        raise InvalidInputError("notification", "use '<block-type-slug>/<block-name>', e.g. "
                                "'slack-webhook/alerts'")
    try:
        loaded = Block.load(block, _sync=True)
    except (ValueError, RuntimeError, KeyError):
        raise InvalidInputError("notification", "no block has that slug/name") from None
    if not isinstance(loaded, NotificationBlock):
        raise InvalidInputError("notification", "the block is not a notification block")
    return loaded


def load_secret(secret: Secret | str | None, field: str) -> Secret | None:
    """A Secret block, or the one saved under that name (never a raw secret value)."""
    if secret is None or isinstance(secret, Secret):
        return secret
    try:
        return Secret.load(secret, _sync=True)  # type: ignore[return-value]
    except (ValueError, RuntimeError):
        raise InvalidInputError(field, "no Secret block has that name; pass the name of a "
                                "Secret block, never the secret itself") from None
