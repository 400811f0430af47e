"""Comparing what a group holds with what the input wants, and saying it as a report does;
both write paths use these."""

from __future__ import annotations

import json
from typing import Any

NEW_GROUP = "(new group)"
_SCALARS = (str, int, bool, type(None))  # not float: NaN never equals itself
_SHOWN = 40  # characters of a value shown in a report cell


def same_value(current: dict[str, Any], key: str, value: Any) -> bool:
    """Whether ``current`` already holds ``value`` under ``key``.

    1 == True in Python, but PostHog stores JSON: values compare as JSON, with types.
    """
    if key not in current:
        return False
    held = current[key]
    if type(held) is type(value) and type(value) in _SCALARS:
        return held == value  # the same JSON, without encoding it
    return json.dumps(held, sort_keys=True) == json.dumps(value, sort_keys=True)


def differing(current: dict[str, Any] | None, wanted: dict[str, Any]) -> dict[str, Any]:
    """The wanted values ``current`` does not hold yet."""
    state = current or {}
    return {k: v for k, v in wanted.items() if not same_value(state, k, v)}


def visible(current: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """Whether a group read back shows every wanted value."""
    return current is not None and all(same_value(current, k, v) for k, v in wanted.items())


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _SHOWN else text[:_SHOWN - 1] + "…"


def describe_set(current: dict[str, Any] | None, key: str, value: Any) -> str:
    """One change as a report shows it: `plan: "free" → "growth"`."""
    before = _shown(current[key]) if current and key in current else "(none)"
    return f"{key}: {before} → {_shown(value)}"


def describe_unset(current: dict[str, Any], key: str) -> str:
    return f"{key}: {_shown(current[key])} → (removed)"


def utf16_length(text: str) -> int:
    """JavaScript's ``.length`` of a string: characters outside the BMP count twice."""
    return len(text.encode("utf-16-le")) // 2
