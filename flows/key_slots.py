"""The project's keys as consumers see them: one slot per label, one Secret block per slot.

An overlap rotation keeps its state in PostHog itself, not in the job: the successor of a
key labelled `L` is the key labelled `L~next` (`SUCCESSOR_SUFFIX`). Both belong to one slot
and one Secret block, named from `L`, so a run started after a crash at any step finds the
pair and carries on. A key labelled `L~next` with no `L` is a successor whose old key was
already deleted (a run stopped before relabelling it). The suffix is reserved: do not give
your own keys labels ending in `~next`.
"""

from __future__ import annotations

import fnmatch
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from prefect_posthog.client import InvalidInputError, PostHogClient, ProjectSecretAPIKey
from prefect_posthog.flows.models import KeySelector
from prefect_posthog.flows.secret_store import name_blocks

SUCCESSOR_SUFFIX = "~next"
# `posthog/api/project_secret_api_key.py`: label max_length and keys per project.
LABEL_MAX = 40
MAX_KEYS = 50


@dataclass
class KeySlot:
    """One label consumers know, the key(s) behind it and where its value is stored.

    Attributes:
        label: The label consumers know (the old key's, never the successor's).
        current: The key holding `label`, if any.
        successor: The key labelled `label~next`, during an overlap rotation.
        block: The Secret block name (`None`: the value is kept elsewhere or nowhere).
    """

    label: str
    current: ProjectSecretAPIKey | None = None
    successor: ProjectSecretAPIKey | None = None
    block: str | None = None

    @property
    def stored_key(self) -> ProjectSecretAPIKey:
        """The key whose value belongs in the block: the successor during an overlap."""
        key = self.successor or self.current
        assert key is not None  # a slot always has one
        return key

    @property
    def in_overlap(self) -> bool:
        return self.successor is not None

    @property
    def ids(self) -> set[str]:
        return {k.id for k in (self.current, self.successor) if k is not None}

    def describe(self) -> str:
        return f"{self.label!r} ({self.stored_key.id})"


def successor_label(label: str) -> str:
    return label + SUCCESSOR_SUFFIX


def store_time(key: ProjectSecretAPIKey) -> datetime | None:
    """When the key's current value was made: its last roll, else its creation."""
    return key.last_rolled_at or key.created_at


def key_slots(keys: list[ProjectSecretAPIKey]) -> list[KeySlot]:
    """Every slot of the project, in the order PostHog lists the keys."""
    slots: dict[str, KeySlot] = {}
    for key in keys:
        base = key.label.removesuffix(SUCCESSOR_SUFFIX)
        if base and base != key.label:
            slots.setdefault(base, KeySlot(base)).successor = key
        else:
            slots.setdefault(key.label, KeySlot(key.label)).current = key
    return list(slots.values())


def in_scope(slots: list[KeySlot], selector: KeySelector | None) -> list[KeySlot]:
    """The slots the selector's ids, labels and pattern name, age aside (`None`: all).

    Raises:
        InvalidInputError: An id or label of the selector names no key of the project.
    """
    if selector is None or selector.all_keys:
        return list(slots)
    ids = {i for slot in slots for i in slot.ids}
    labels = {slot.label for slot in slots} | {
        successor_label(slot.label) for slot in slots if slot.successor}
    missing_ids = [i for i in selector.ids if i not in ids]
    if missing_ids:
        raise InvalidInputError("selector.ids", "no project secret API key has the id(s) "
                                + ", ".join(missing_ids) + "; nothing was changed")
    missing_labels = [x for x in selector.labels if x not in labels]
    if missing_labels:
        raise InvalidInputError("selector.labels", "no project secret API key is labelled "
                                + ", ".join(repr(x) for x in missing_labels)
                                + "; nothing was changed")
    wanted = {x.removesuffix(SUCCESSOR_SUFFIX) for x in selector.labels}

    def named(slot: KeySlot) -> bool:
        if selector.ids and not slot.ids & set(selector.ids):
            return False
        if selector.labels and slot.label not in wanted:
            return False
        return not selector.label_pattern or fnmatch.fnmatchcase(slot.label,
                                                                 selector.label_pattern)

    return [slot for slot in slots if named(slot)]


def is_due(slot: KeySlot, selector: KeySelector, now: datetime) -> bool:
    """Whether the slot meets the selector's age criterion too (its stored value's age)."""
    if selector.older_than_days is None:
        return True
    since = store_time(slot.stored_key)
    return since is not None and now - since > timedelta(days=selector.older_than_days)


def template_fields(template: str | None) -> set[str]:
    """The fields a block name template uses."""
    if not template:
        return set()
    try:
        return {field for _, field, _, _ in string.Formatter().parse(template) if field}
    except ValueError:
        return set()  # block_name reports the broken template, naming the field


def name_slots(slots: list[KeySlot], scope: list[KeySlot], template: str | None) -> None:
    """Give every slot in scope its Secret block name, refusing a name another slot of
    the project would share (its consumers would read the other key's value)."""
    # An overlap pair shares its block: it is named from the old key (its label, its id).
    fields = {slot.label: {"label": slot.label, "id": (slot.current or slot.stored_key).id}
              for slot in slots}
    by_label = {slot.label: slot for slot in slots}
    names = name_blocks(fields, template, [slot.label for slot in scope],
                        lambda label: by_label[label].describe(),
                        "use a template with {id} or relabel a key")
    for slot in scope:
        slot.block = names[slot.label]


def check_overlap_room(slots: list[KeySlot], starting: list[KeySlot], total: int) -> None:
    """Refuse, before any write, successors PostHog would refuse: labels over 40
    characters, or more keys than the project may have.

    Raises:
        InvalidInputError: Naming `strategy`, the key and the limit.
    """
    long = [slot.label for slot in starting if len(successor_label(slot.label)) > LABEL_MAX]
    if long:
        raise InvalidInputError("strategy", f"the successor of {long[0]!r} would be labelled "
                                f"{successor_label(long[0])!r}, over PostHog's {LABEL_MAX} "
                                f"characters; relabel the key (at most "
                                f"{LABEL_MAX - len(SUCCESSOR_SUFFIX)} characters) or use "
                                "strategy 'roll'. Nothing was changed")
    if total + len(starting) > MAX_KEYS:
        raise InvalidInputError("strategy", f"{len(starting)} successor key(s) next to the "
                                f"project's {total} keys would pass PostHog's cap of "
                                f"{MAX_KEYS}; delete unused keys, rotate fewer at once or use "
                                "strategy 'roll'. Nothing was changed")


@dataclass
class Scope:
    """The project's keys as slots, the ones a run acts on (named), and PostHog's clock.

    Attributes:
        slots: Every slot of the project (for block-name collisions and the key cap).
        named: The slots in the selector's scope, each with its Secret block name.
        now: PostHog's clock (its `Date` header), to judge ages and stamps.
        total: How many keys the project has.
    """

    slots: list[KeySlot]
    named: list[KeySlot]
    now: datetime
    total: int


def read_scope(posthog: PostHogClient, selector: KeySelector | None,
               template: str | None) -> Scope:
    """Read every key of the project once and name the slots in the selector's scope.

    Raises:
        InvalidInputError: The selector names no such key, or two keys would share a block.
    """
    keys = list(posthog.iter_project_secret_api_keys())
    now = posthog.server_now()
    slots = key_slots(keys)
    named = in_scope(slots, selector)
    name_slots(slots, named, template)
    return Scope(slots, named, now, len(keys))
