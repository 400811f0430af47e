"""Where the secret jobs keep what consumers read: Prefect `Secret` blocks, one per key or
share, named from a template.

Both jobs read, write and (when they created it) delete blocks the same way here: a value
read from a block joins the process's secret registry at once, so no log line, error or
report can carry it afterwards; names are checked against every key or share of the
project, so no job ever overwrites the block another key's consumers read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

from prefect.blocks.system import Secret
from pydantic import SecretStr

from prefect_posthog.client import SECRETS, InvalidInputError
from prefect_posthog.flows.models import block_name

K = TypeVar("K", bound=Hashable)


def mask_of(value: SecretStr | None) -> str | None:
    """PostHog's mask of a key value (first 4 + `...` + last 4, as `posthog/models/utils.py`
    `mask_key_value` makes it), computed locally: what a block holds is compared with the
    live key's `mask_value` without asking anyone."""
    if value is None:
        return None
    raw = value.get_secret_value()
    return f"{raw[:4]}...{raw[-4:]}"


def stored_in(name: str | None) -> str | None:
    """The storage place as reports, events and notifications name it."""
    return f"Secret block '{name}'" if name else None


def read_secret(name: str | None) -> SecretStr | None:
    """The block's value (registered as a secret the moment it is in hand), or `None`
    when there is no such block."""
    if not name:
        return None
    try:
        value = SecretStr(str(Secret.load(name, _sync=True).get()))
    except (ValueError, RuntimeError):
        return None  # no block of that name (yet)
    SECRETS.add(value)
    return value


def write_secret(name: str, value: SecretStr) -> None:
    """Store `value` in the block, creating or overwriting it."""
    SECRETS.add(value)
    Secret(value=value).save(name, overwrite=True, _sync=True)


def restore_secret(name: str, previous: SecretStr | None) -> None:
    """Put back what the block held before a job wrote it: the previous value, or no
    block at all when the job created it."""
    if previous is not None:
        write_secret(name, previous)
    elif read_secret(name) is not None:
        Secret.delete(name, _sync=True)


def name_blocks(
    fields: Mapping[K, dict[str, Any]],
    template: str | None,
    chosen: list[K],
    describe: Callable[[K], str],
    hint: str,
) -> dict[K, str | None]:
    """The Secret block name of every chosen item, refusing names shared with another item.

    Args:
        fields: Every item of the project (not only the chosen ones) and the values the
            template may use, e.g. `{"label": ..., "id": ...}`: a chosen item whose name
            is also another item's would overwrite the value that item's consumers read.
        template: The name template; `None` stores nothing.
        chosen: The items that will be written.
        describe: An item as the error names it.
        hint: How to fix a collision.

    Raises:
        InvalidInputError: A name is invalid, or two items would share one block.
    """
    if not template:
        return {item: None for item in chosen}
    names = {item: block_name(template, **values) for item, values in fields.items()}
    holders: dict[str, list[K]] = defaultdict(list)
    for item, name in names.items():
        holders[name].append(item)
    for item in chosen:
        sharing = holders[names[item]]
        if len(sharing) > 1:
            who = " and ".join(describe(other) for other in sharing)
            raise InvalidInputError("secret_block_name_template", f"{who} would all be stored "
                                    f"in Secret block '{names[item]}'; {hint}. Nothing was "
                                    "changed")
    return {item: names[item] for item in chosen}
