"""Blocks given to a flow as instances (Python, the UI's block pickers), as block-document
references (deployment defaults: `{"$ref": {"block_document_id": ...}}`, resolved by
Prefect when the run starts) or by name.

A `{{ prefect.blocks.* }}` placeholder is never used: `prefect deploy` would resolve it
into the block's data, secret included, and keep it in the deployment's parameters. Error
messages echo a given name only when it is shaped like a block name (a user could have
typed a secret where a name belongs) and list the saved names of that type.
"""

from __future__ import annotations

import re
from typing import Union

from prefect.blocks.abstract import NotificationBlock
from prefect.blocks.core import Block
from prefect.blocks.notifications import (
    CustomWebhookNotificationBlock,
    DiscordWebhook,
    MattermostWebhook,
    MicrosoftTeamsWebhook,
    OpsgenieWebhook,
    PagerDutyWebHook,
    SendgridEmail,
    SlackWebhook,
    TwilioSMS,
)
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from pydantic.json_schema import SkipJsonSchema

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import InvalidInputError

# Prefect's block names; anything else is not echoed back (it could be a pasted secret).
BLOCK_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")

# The UI offers a picker per concrete type: the abstract NotificationBlock has no saved
# documents of its own, so a parameter typed with it gives an empty picker. Other
# NotificationBlock subclasses stay accepted from code, outside the form's schema.
NotificationChoice = Union[  # noqa: UP007 - the UI reads the union's members in this order
    SlackWebhook, MicrosoftTeamsWebhook, CustomWebhookNotificationBlock, DiscordWebhook,
    MattermostWebhook, PagerDutyWebHook, OpsgenieWebhook, TwilioSMS, SendgridEmail,
    SkipJsonSchema[NotificationBlock],
]


def _saved_names(block_type_slug: str) -> list[str]:
    """Names of the saved documents of one block type (names only; no secrets are read)."""
    try:
        with get_client(sync_client=True) as client:
            documents = client.read_block_documents_by_type(block_type_slug,
                                                            include_secrets=False)
    except Exception:  # the list only improves an error message; never fail on it
        return []
    return sorted(d.name for d in documents if d.name and not d.is_anonymous)


def _missing(field: str, name: str, block_type_slug: str, how: str,
             echo: bool = True) -> InvalidInputError:
    # Only a string shaped like a block name is echoed: a user may have typed a secret.
    shown = f"{name!r}" if echo and BLOCK_NAME.fullmatch(name) else "with the given name"
    saved = _saved_names(block_type_slug)
    listed = f"saved ones: {', '.join(saved[:20])}" if saved else "none is saved yet"
    return InvalidInputError(field, f"no {block_type_slug} block {shown} ({listed}); {how}")


def load_credentials(credentials: PostHogCredentials | str) -> PostHogCredentials:
    """The credentials block itself, or the one saved under that name."""
    if isinstance(credentials, PostHogCredentials):
        return credentials
    try:
        return PostHogCredentials.load(credentials, _sync=True)  # type: ignore[return-value]
    except (ValueError, RuntimeError):
        raise _missing("credentials", credentials, "posthog-credentials",
                       "pick one in the form, or create it in the UI (Blocks > PostHog "
                       "Credentials) or with PostHogCredentials(...).save(name)") from None


def load_notification(block: NotificationBlock | str | None) -> NotificationBlock | None:
    """A notification block, or one saved as `<block-type-slug>/<name>`."""
    if block is None or isinstance(block, NotificationBlock):
        return block
    if "/" not in block:
        raise InvalidInputError("notification", "use '<block-type-slug>/<block-name>', e.g. "
                                "'slack-webhook/alerts', or pick a block in the form")
    slug, name = block.split("/", 1)
    try:
        loaded = Block.load(block, _sync=True)
    except (ValueError, RuntimeError, KeyError):
        raise _missing("notification", name, slug, "pick one in the form or create it in "
                       "the UI (Blocks)") from None
    if not isinstance(loaded, NotificationBlock):
        raise InvalidInputError("notification", f"the {slug} block is not a notification "
                                "block")
    return loaded


def load_secret(secret: Secret | str | None, field: str) -> Secret | None:
    """A Secret block, or the one saved under that name (never a raw secret value)."""
    if secret is None or isinstance(secret, Secret):
        return secret
    try:
        return Secret.load(secret, _sync=True)  # type: ignore[return-value]
    except (ValueError, RuntimeError):
        # Never echoed: in a field meant for a secret's block, a typed password is likely.
        raise _missing(field, secret, "secret", "pass the name of a Secret block, never "
                       "the secret itself", echo=False) from None
