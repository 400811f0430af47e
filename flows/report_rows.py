"""The three reports' rows as people read them: what happened first (and, for secrets,
where the new value went and what was verified), then details; ids last."""

from __future__ import annotations

from typing import Any

from prefect_posthog.flows.models import (
    ItemOutcome,
    KeyRotationOutcome,
    PasswordResetOutcome,
)

ROTATION_CHECKED = ("the final check, after any late write could land: the key's live mask "
                    "and roll time match the stored value")
ROTATION_VERIFIED = (ROTATION_CHECKED + "; with verify on, the stored value authenticates "
                     "(feature flag local evaluation) and the old value is refused")
RESET_VERIFIED = (
    "the final check, after any late write could land: each share requires a password, "
    "its only active password is the stored one, and the link is the live one")


def bulk_row(outcome: ItemOutcome) -> dict[str, Any]:
    """One table row: what happened first, the changes as old → new, the reason in full."""
    return {"row": outcome.row, "group_key": outcome.group_key, "status": outcome.status,
            "changes": "; ".join(outcome.changes) or None, "reason": outcome.reason,
            "group_type_index": outcome.group_type_index, "write_path": outcome.write_path}


def _unchecked(outcome: KeyRotationOutcome, verify: bool, dry_run: bool) -> str:
    if dry_run:
        return "not checked: dry run"
    if outcome.status == "failed" and outcome.rolls == 0:
        return "not checked: the key was not rolled"
    if not verify:
        return "not checked: verify is off"
    return "not checked: see reason"


def _checked(value: bool | None, outcome: KeyRotationOutcome, verify: bool,
             dry_run: bool) -> str:
    if value is None:
        return _unchecked(outcome, verify, dry_run)
    return "yes" if value else "no"


def rotation_row(outcome: KeyRotationOutcome, *, verify: bool, dry_run: bool) -> dict[str, Any]:
    """Label, status, where the new value is stored and the verification first; id last."""
    return {
        "label": outcome.label,
        "status": outcome.status,
        "stored_in": outcome.stored_in or ("nothing stored: dry run" if dry_run else "-"),
        "verification": outcome.verification or _unchecked(outcome, verify, dry_run),
        "new_value_works": _checked(outcome.new_value_works, outcome, verify, dry_run),
        "old_value_revoked": _checked(outcome.old_value_revoked, outcome, verify, dry_run),
        "mask": outcome.mask_value,
        "rolled_at": f"{outcome.rolled_at:%Y-%m-%d %H:%M:%S} UTC" if outcome.rolled_at else None,
        "reason": outcome.reason,
        "rolls": outcome.rolls,
        "id": outcome.id[:8],
    }


def rotation_summary(outcomes: list[KeyRotationOutcome], *, verify: bool, dry_run: bool,
                     notified: bool, notification_error: str | None) -> dict[str, Any]:
    rotated = [o for o in outcomes if o.status == "rotated"]
    places = sorted({o.stored_in for o in rotated if o.stored_in})
    return {
        "dry run": dry_run, "selected": len(outcomes), "rotated": len(rotated),
        "failed": sum(o.status == "failed" for o in outcomes),
        "verified": "nothing (dry run)" if dry_run else ROTATION_VERIFIED if verify else
        ROTATION_CHECKED + " (verify is off)",
        "new values stored in": ", ".join(places) or "-",
        "notified": notified, "notification error": notification_error,
    }


def reset_row(outcome: PasswordResetOutcome) -> dict[str, Any]:
    """The share, status and where the password is stored first; details after."""
    return {
        "share": f"{outcome.resource} {outcome.id}",
        "status": outcome.status,
        "stored_in": outcome.stored_in,
        "share_url": outcome.share_url,
        "stored_secret": outcome.stored_secret,
        "removed_passwords": outcome.removed_passwords,
        "link_refreshed": outcome.link_refreshed,
        "reason": outcome.reason,
        "password_id": outcome.password_id,
    }


def reset_summary(outcomes: list[PasswordResetOutcome], *, dry_run: bool, notified: bool,
                  notification_error: str | None) -> dict[str, Any]:
    done = [o for o in outcomes if o.status == "reset"]
    places = sorted({o.stored_in for o in done if o.stored_in})
    return {
        "dry run": dry_run, "targets": len(outcomes), "reset": len(done),
        "failed": sum(o.status == "failed" for o in outcomes),
        "verified": "nothing (dry run)" if dry_run else RESET_VERIFIED,
        "passwords stored in": ", ".join(places) or "-",
        "notified": notified, "notification error": notification_error,
    }
