"""Shared set-up for the benchmarks: an isolated Prefect home and quiet, fast flows."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="posthog-bench-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
# On a loaded machine the temporary API can take longer than Prefect's 20 s to start.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

from prefect import flow
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

KEY = "phx_benchmark_key"


@contextmanager
def quiet_prefect():
    """Heartbeats off (each sync flow would wait ~1 s at exit) and the API warmed up."""
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        warm_up()
        yield


@flow
def warm_up() -> None:
    """Start the temporary API before anything is timed."""


def ratio_line(name: str, value: float, target: str) -> str:
    return f"{name}: {value:.3f} (target {target})"


@contextmanager
def emulator_process(*args: str) -> Iterator[str]:
    """The emulator CLI in its own process (so its memory is not the flow's); yields its URL."""
    import subprocess
    import sys
    import time

    import httpx

    from prefect_posthog.emulator import free_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "prefect_posthog.emulator", "--port",
                                str(port), "--personal-api-key", KEY, *args],
                               stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/_emulator/health")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
