"""The jobs as Prefect flows, runnable on a schedule, from the UI or as subflows: bulk group
property updates, key rotation and its audit, sharing-password resets."""

from prefect_posthog.flows.audit_keys import audit_project_secret_api_keys
from prefect_posthog.flows.bulk_update import bulk_update_group_properties
from prefect_posthog.flows.models import (
    AuditReport,
    BulkUpdateReport,
    GroupPropertyUpdate,
    ItemOutcome,
    KeyAction,
    KeyAudit,
    KeyRotationOutcome,
    KeySelector,
    KeyState,
    KeyStatus,
    PasswordResetOutcome,
    PasswordResetReport,
    RotationReport,
    SharingTarget,
)
from prefect_posthog.flows.project_lock import ProjectBusyError
from prefect_posthog.flows.reporting import JobFailedError
from prefect_posthog.flows.reset_passwords import reset_sharing_passwords
from prefect_posthog.flows.rotate_keys import rotate_project_secret_api_keys

__all__ = [
    "AuditReport",
    "BulkUpdateReport",
    "GroupPropertyUpdate",
    "ItemOutcome",
    "JobFailedError",
    "KeyAction",
    "KeyAudit",
    "KeyRotationOutcome",
    "KeySelector",
    "KeyState",
    "KeyStatus",
    "PasswordResetOutcome",
    "PasswordResetReport",
    "ProjectBusyError",
    "RotationReport",
    "SharingTarget",
    "audit_project_secret_api_keys",
    "bulk_update_group_properties",
    "reset_sharing_passwords",
    "rotate_project_secret_api_keys",
]
