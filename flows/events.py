"""Prefect events the jobs emit, so other deployments can react instead of polling.

Resources are named `posthog.project.<project>.<what>` so automations and deployment
triggers can match them with wildcards; labels carry what a trigger filters on (key label,
resource kind, dry run). The flow run that did the work is attached as a related resource
by Prefect. Every text goes through the secret registry first: an event never carries a key
value or a password, even if a server echoed one into a reason.

Events (resource in brackets):

- `posthog.secret-api-key.rotated` [`posthog.project.<p>.secret-api-key.<id>`]: a new
  value (a roll, a repair, or an overlap's successor: then `<id>` is the successor's and
  `posthog.old-key-id` the key it replaces) passed the final check (`posthog.status`
  says `rotated` or `repaired`); `.rotation-failed` when it could not be done;
  `.rotation-planned` in a dry run.
- `posthog.secret-api-key.retired` [the old key]: an overlap's old key was deleted and its
  successor (`posthog.successor-id`) holds the label; `.retire-overdue` when the deadline
  passed and consumers still use the old key (nothing deleted).
- `posthog.secret-api-key.audited` [the key]: what the audit found (`posthog.state`);
  `.drift-detected` too when the Secret block holds a dead value.
- `posthog.sharing.password-reset` [`posthog.project.<p>.<kind>.<id>`]: a share passed
  the final check; `password-reset-failed`; `password-reset-planned` in a dry run.
- `posthog.groups.bulk-update.completed` / `.failed` [`posthog.project.<p>.groups`]:
  the end of a bulk run, with counts, write path and `posthog.dry-run`.
"""

from __future__ import annotations

from typing import Any

from prefect.events import emit_event

from prefect_posthog.blocks import PostHogCredentials
from prefect_posthog.client import SECRETS
from prefect_posthog.flows.models import (
    DRIFT,
    BulkUpdateReport,
    KeyAudit,
    KeyRotationOutcome,
    KeyStatus,
    PasswordResetOutcome,
)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return SECRETS.redact(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _emit(event: str, resource: dict[str, Any], payload: dict[str, Any],
          project: str) -> None:
    labels = {k: "" if v is None else str(v) for k, v in resource.items()}
    emit_event(event, resource=_clean(labels), payload=_clean(payload), related=[
        {"prefect.resource.id": f"posthog.project.{project}",
         "prefect.resource.role": "posthog-project"}])


def project_of(credentials: PostHogCredentials, project_id: int | str | None) -> str:
    """The project part of a resource id (the override, else the block's project)."""
    return str(credentials.project(project_id))


_KEY_EVENTS = {KeyStatus.ROTATED: "rotated", KeyStatus.REPAIRED: "rotated",
               KeyStatus.RETIRED: "retired", KeyStatus.OVERDUE: "retire-overdue",
               KeyStatus.FAILED: "rotation-failed", KeyStatus.PLANNED: "rotation-planned"}


def _key_resource(project: str, key_id: str, label: str, **labels: Any) -> dict[str, Any]:
    return {"prefect.resource.id": f"posthog.project.{project}.secret-api-key.{key_id}",
            "prefect.resource.name": label, "posthog.project": project,
            "posthog.key-id": key_id, "posthog.label": label, **labels}


def key_rotation_events(project: str, outcomes: list[KeyRotationOutcome],
                        dry_run: bool) -> None:
    """One event per key that changed or needs attention (an overlap still waiting for its
    consumers emits none): rotated, retired, retire-overdue, rotation-failed or (dry run)
    rotation-planned."""
    for o in outcomes:
        name = "rotation-planned" if dry_run else _KEY_EVENTS.get(o.status)
        if name is None:
            continue
        retiring = name in ("retired", "retire-overdue") and o.old_key_id
        key_id = o.old_key_id if retiring else o.id
        _emit(f"posthog.secret-api-key.{name}", _key_resource(
            project, key_id or o.id, o.label, **{
                "posthog.mask": o.mask_value, "posthog.stored-in": o.stored_in,
                "posthog.status": str(o.status), "posthog.strategy": o.strategy,
                "posthog.old-key-id": None if retiring else o.old_key_id,
                "posthog.successor-id": o.id if retiring else None,
                "posthog.dry-run": str(dry_run).lower()}),
            {"label": o.label, "mask_value": o.mask_value, "stored_in": o.stored_in,
             "rolled_at": o.rolled_at.isoformat() if o.rolled_at else None,
             "status": str(o.status), "action": str(o.action) if o.action else None,
             "verification": o.verification, "detail": o.detail, "reason": o.reason,
             "dry_run": dry_run}, project)


def key_audit_events(project: str, audits: list[KeyAudit]) -> None:
    """One `audited` event per key (its state as the `posthog.state` label), and a
    `drift-detected` event for each key whose Secret block holds a dead value."""
    for a in audits:
        resource = _key_resource(project, a.id, a.label, **{
            "posthog.state": str(a.state), "posthog.stored-in": a.stored_in,
            "posthog.mask": a.live_mask})
        payload = {"label": a.label, "state": str(a.state), "detail": a.detail,
                   "stored_in": a.stored_in, "live_mask": a.live_mask,
                   "stored_mask": a.stored_mask,
                   "repair": str(a.repair) if a.repair else None}
        _emit("posthog.secret-api-key.audited", resource, payload, project)
        if a.state in DRIFT:
            _emit("posthog.secret-api-key.drift-detected", resource, payload, project)


def password_reset_events(project: str, outcomes: list[PasswordResetOutcome],
                          dry_run: bool) -> None:
    """One event per share: password-reset, -failed or (dry run) -planned."""
    for o in outcomes:
        name = ("password-reset-planned" if dry_run else
                "password-reset" if o.status == "reset" else "password-reset-failed")
        _emit(f"posthog.sharing.{name}", {
            "prefect.resource.id": f"posthog.project.{project}.{o.resource}.{o.id}",
            "prefect.resource.name": f"{o.resource} {o.id}",
            "posthog.project": project, "posthog.resource-kind": o.resource,
            "posthog.resource-id": o.id, "posthog.share-url": o.share_url,
            "posthog.stored-in": o.stored_in, "posthog.dry-run": str(dry_run).lower(),
        }, {"resource": o.resource, "id": o.id, "share_url": o.share_url,
            "link_refreshed": o.link_refreshed, "stored_in": o.stored_in,
            "stored_secret": o.stored_secret, "reason": o.reason, "dry_run": dry_run},
            project)


def bulk_update_event(project: str, report: BulkUpdateReport) -> None:
    """`.completed` (no item failed) or `.failed`, with the counts and the write path."""
    outcome = "failed" if report.failed else "completed"
    counts = {name: getattr(report, name) for name in
              ("total", "applied", "unchanged", "skipped", "failed", "planned", "reads",
               "writes")}
    _emit(f"posthog.groups.bulk-update.{outcome}", {
        "prefect.resource.id": f"posthog.project.{project}.groups",
        "prefect.resource.name": f"groups of project {project}",
        "posthog.project": project, "posthog.write-path": report.write_path,
        "posthog.dry-run": str(report.dry_run).lower(),
    }, {**counts, "write_path": report.write_path, "dry_run": report.dry_run}, project)
