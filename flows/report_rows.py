"""The three reports' rows as people read them: what happened first (and, for secrets,
where the new value went and what was verified), then details; ids last."""

from __future__ import annotations

from typing import Any

from prefect_posthog.flows.models import (
    DRIFT,
    ItemOutcome,
    KeyAudit,
    KeyRotationOutcome,
    KeyState,
    KeyStatus,
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
    if outcome.status in (KeyStatus.OVERLAPPING, KeyStatus.OVERDUE):
        return ("not checked: nothing was written, and during an overlap neither key is "
                "checked (a check would count as a use)")
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
        "status": str(outcome.status),
        "stored_in": outcome.stored_in or ("nothing stored: dry run" if dry_run else "-"),
        "verification": outcome.verification or _unchecked(outcome, verify, dry_run),
        "detail": outcome.detail,
        "new_value_works": _checked(outcome.new_value_works, outcome, verify, dry_run),
        "old_value_revoked": _checked(outcome.old_value_revoked, outcome, verify, dry_run),
        "mask": outcome.mask_value,
        "rolled_at": f"{outcome.rolled_at:%Y-%m-%d %H:%M:%S} UTC" if outcome.rolled_at else None,
        "action": str(outcome.action) if outcome.action else None,
        "reason": outcome.reason,
        "rolls": outcome.rolls,
        "old_key_id": outcome.old_key_id[:8] if outcome.old_key_id else None,
        "id": outcome.id[:8],
    }


def _count(outcomes: list[KeyRotationOutcome], status: KeyStatus) -> int:
    return sum(o.status is status for o in outcomes)


def rotation_summary(outcomes: list[KeyRotationOutcome], *, verify: bool, dry_run: bool,
                     notified: bool, notification_error: str | None,
                     strategy: str = "roll") -> dict[str, Any]:
    written = [o for o in outcomes if o.status in WRITTEN_STATUSES]
    places = sorted({o.stored_in for o in written if o.stored_in})
    return {
        "dry run": dry_run, "strategy": strategy, "keys": len(outcomes),
        **{str(status): _count(outcomes, status) for status in KeyStatus
           if status is not KeyStatus.PLANNED or dry_run},
        "verified": "nothing (dry run)" if dry_run else ROTATION_VERIFIED if verify else
        ROTATION_CHECKED + " (verify is off)",
        "new values stored in": ", ".join(places) or "-",
        "notified": notified, "notification error": notification_error,
    }


WRITTEN_STATUSES = (KeyStatus.ROTATED, KeyStatus.REPAIRED, KeyStatus.RETIRED)


def rotation_notice(outcomes: list[KeyRotationOutcome]) -> tuple[str, str] | None:
    """The notification's subject and body (labels, masks, places; never a value), or
    `None` when nothing is worth telling: keys rotated, repaired, retired, or overdue."""
    lines = []
    for o in outcomes:
        if o.status in (KeyStatus.ROTATED, KeyStatus.REPAIRED):
            when = f" at {o.rolled_at:%Y-%m-%d %H:%M:%S} UTC" if o.rolled_at else ""
            how = "a successor created" if o.old_key_id else "rolled"
            lines.append(f"- {o.label} ({o.mask_value}) {o.status}: {how}{when}, stored in "
                         f"{o.stored_in or 'nowhere'}")
        elif o.status is KeyStatus.RETIRED:
            lines.append(f"- {o.label} ({o.mask_value}): the old key is retired; its successor "
                         f"holds the label, stored in {o.stored_in or 'nowhere'}")
        elif o.status is KeyStatus.OVERDUE:
            lines.append(f"- {o.label}: NOT retired, past the deadline: {o.detail}")
    if not lines:
        return None
    counts = [f"{sum(o.status is s for o in outcomes)} {s}" for s in
              (KeyStatus.ROTATED, KeyStatus.REPAIRED, KeyStatus.RETIRED, KeyStatus.OVERDUE)
              if any(o.status is s for o in outcomes)]
    return f"PostHog project secret API keys: {', '.join(counts)}", "\n".join(lines)


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


def audit_row(audit: KeyAudit) -> dict[str, Any]:
    """Label and state first, what the block holds against the live key, then details."""
    return {
        "label": audit.label,
        "state": str(audit.state),
        "stored_in": audit.stored_in or "-",
        "detail": audit.detail,
        "live_mask": audit.live_mask,
        "stored_mask": audit.stored_mask,
        "last_used_at": (f"{audit.last_used_at:%Y-%m-%d %H:%M:%S} UTC" if audit.last_used_at
                         else None),
        "repair": str(audit.repair) if audit.repair else None,
        "reason": audit.reason,
        "id": audit.id[:8],
    }


def audit_summary(audits: list[KeyAudit], *, repair: bool, verify: bool, notified: bool,
                  notification_error: str | None) -> dict[str, Any]:
    drifted = [a for a in audits if a.state in DRIFT]
    return {
        "keys": len(audits),
        **{str(state): sum(a.state is state for a in audits) for state in KeyState},
        "drift found": bool(drifted),
        "repair": "on" if repair else "off (report only)",
        "repaired": sum(a.repair is KeyStatus.REPAIRED for a in audits),
        "checked": ("each Secret block's mask against the live key; outside overlaps, that "
                    "the stored value authenticates" if verify else
                    "each Secret block's mask against the live key (verify is off)"),
        "notified": notified, "notification error": notification_error,
    }
