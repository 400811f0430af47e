"""A local PostHog of the slice (groups, sharing, project secret API keys, capture).

Run it with ``python -m prefect_posthog.emulator --port 8010`` or in-process with `Emulator`.
"""

from prefect_posthog.emulator.app import EmulatorApp
from prefect_posthog.emulator.faults import FAULT_KINDS, Faults
from prefect_posthog.emulator.server import Emulator, free_port
from prefect_posthog.emulator.store import PostHogState

__all__ = ["FAULT_KINDS", "Emulator", "EmulatorApp", "Faults", "PostHogState", "free_port"]
