"""Prefect blocks of prefect-posthog."""

from prefect_posthog.blocks.credentials import PostHogCredentials

__all__ = ["PostHogCredentials"]
