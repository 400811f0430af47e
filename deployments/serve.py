"""Serve the flows without a work pool: ``python -m prefect_posthog.deployments.serve``.

The process polls the Prefect API for scheduled and UI-triggered runs of these deployments
and runs them itself; stop it with Ctrl-C (its schedules are paused then).
"""

from __future__ import annotations

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from prefect_posthog.flows import (
    audit_project_secret_api_keys,
    bulk_update_group_properties,
    reset_sharing_passwords,
    rotate_project_secret_api_keys,
)
from prefect_posthog.flows.blocks import load_credentials, load_notification


def build(credentials: str = "posthog",
          notification: str | None = "custom-webhook/posthog-notify") -> list[RunnerDeployment]:
    """The deployments of prefect.yaml, with the named blocks as references (never their data).

    Loading the blocks here makes a misspelt name fail before anything is served, and
    lets Prefect store each as a block-document reference that the UI shows in its picker.
    """
    posthog = load_credentials(credentials)
    notify = load_notification(notification)
    return [
        rotate_project_secret_api_keys.to_deployment(
            "monthly", cron="0 6 1 * *",
            description="Roll project secret API keys older than 30 days; runs at 06:00 UTC "
                        "on the 1st of every month.",
            parameters={"credentials": posthog, "selector": {"older_than_days": 30},
                        "notification": notify}),
        rotate_project_secret_api_keys.to_deployment(
            "overlap", schedule=Cron("30 * * * *", timezone="UTC", active=False),
            description="Swap flags-* keys older than 30 days with no outage (strategy "
                        "overlap) and retire old keys once consumers moved; hourly, paused "
                        "(it replaces the monthly roll for these keys).",
            parameters={"credentials": posthog, "notification": notify,
                        "selector": {"label_pattern": "flags-*", "older_than_days": 30},
                        "strategy": "overlap"}),
        audit_project_secret_api_keys.to_deployment(
            "hourly-audit", cron="15 * * * *",
            description="Check hourly that every key's Secret block holds its live value; "
                        "report and notify drift (report-only).",
            parameters={"credentials": posthog, "notification": notify}),
        bulk_update_group_properties.to_deployment(
            "update-group-properties", parameters={"credentials": posthog, "dry_run": True},
            description="Bulk group property update; no schedule, a dry run by default."),
        reset_sharing_passwords.to_deployment(
            "reset-share-passwords", parameters={"credentials": posthog,
                                                 "notification": notify},
            description="Reset share passwords; no schedule, run it with the shares to reset."),
    ]


def main() -> None:
    """Serve all the deployments until interrupted."""
    serve(*build())


if __name__ == "__main__":
    main()
