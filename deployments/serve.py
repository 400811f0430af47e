"""Serve the three flows without a work pool: ``python -m prefect_posthog.deployments.serve``.

The process polls the Prefect API for scheduled and UI-triggered runs of these deployments
and runs them itself; stop it with Ctrl-C (its schedules are paused then).
"""

from __future__ import annotations

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from prefect_posthog.flows import (
    bulk_update_group_properties,
    reset_sharing_passwords,
    rotate_project_secret_api_keys,
)


def build(credentials: str = "posthog",
          notification: str | None = "custom-webhook/posthog-notify") -> list[RunnerDeployment]:
    """The three deployments, referencing blocks by name (never their data)."""
    return [
        rotate_project_secret_api_keys.to_deployment(
            "monthly", cron="0 6 1 * *",
            parameters={"credentials": credentials, "selector": {"older_than_days": 30},
                        "notification": notification}),
        bulk_update_group_properties.to_deployment(
            "on-demand", parameters={"credentials": credentials, "dry_run": True}),
        reset_sharing_passwords.to_deployment(
            "on-demand", parameters={"credentials": credentials, "targets": [],
                                     "notification": notification}),
    ]


def main() -> None:
    """Serve all three flows until interrupted."""
    serve(*build())


if __name__ == "__main__":
    main()
