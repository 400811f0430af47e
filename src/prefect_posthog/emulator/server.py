"""Run the emulator in a background thread (tests, demo) or in the foreground (CLI)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import uvicorn

from prefect_posthog.client import RateWindow
from prefect_posthog.emulator.app import EmulatorApp
from prefect_posthog.emulator.constants import DEFAULT_INGESTION_LAG, DEFAULT_RATE_LIMIT
from prefect_posthog.emulator.faults import Faults
from prefect_posthog.emulator.store import Config, PostHogState


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Emulator:
    """A local PostHog of the slice, served over HTTP.

    Args:
        port: Port to listen on; 0 picks a free one.
        host: Interface to bind; loopback by default.
        personal_api_keys: ``{key: scopes}``; ``None`` scopes means all scopes.
        rate_limit: Windows per personal key, e.g. ``"480/min,4800/h"`` (PostHog's);
            ``""`` or ``()`` disables throttling.
        faults: Fault injection settings.
        advanced_permissions: Whether the organization has Advanced Permissions.
        state_file: Load state from and save it to this file.
        ingestion_lag: Seconds before a captured ``$groupidentify`` reaches the groups.

    Example:
        ```python
        from prefect_posthog.emulator import Emulator

        with Emulator(personal_api_keys={"phx_test": None}) as posthog:
            print(posthog.url)
        ```
    """

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        personal_api_keys: dict[str, list[str] | None] | None = None,
        rate_limit: tuple[RateWindow, ...] | str = DEFAULT_RATE_LIMIT,
        faults: Faults | None = None,
        advanced_permissions: bool = True,
        state_file: str | None = None,
        ingestion_lag: float = DEFAULT_INGESTION_LAG,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        state = PostHogState(config=Config(advanced_permissions=advanced_permissions))
        if state_file:
            try:
                with open(state_file) as handle:
                    state.load(handle.read())
            except FileNotFoundError:
                pass
        for key, scopes in (personal_api_keys or {}).items():
            state.add_personal_api_key(key, scopes)
        self.app = EmulatorApp(state, rate_limit=rate_limit, faults=faults,
                               state_file=state_file, ingestion_lag=ingestion_lag)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8123``."""
        return f"http://{self.host}:{self.port}"

    @property
    def state(self) -> PostHogState:
        return self.app.state

    def _config(self) -> uvicorn.Config:
        # The app sends its own Date header, on the emulated clock.
        return uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning",
                              access_log=False, lifespan="on", timeout_keep_alive=30,
                              date_header=False)

    def start(self) -> Emulator:
        """Serve in a daemon thread and wait until it answers."""
        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(target=self._server.run, daemon=True,
                                        name="posthog-emulator")
        self._thread.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._server.started:
                return self
            time.sleep(0.02)
        raise RuntimeError(f"emulator did not start on {self.url}")

    def serve_forever(self) -> None:
        """Serve in the foreground until interrupted (CLI)."""
        uvicorn.Server(self._config()).run()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- admin helpers (over HTTP, like any external user) --------------------------------

    def admin(self, method: str, action: str, json: Any = None, **params: Any) -> Any:
        response = httpx.request(method, f"{self.url}/_emulator/{action}", json=json,
                                 params=params, timeout=60)
        if response.status_code >= 400:
            raise RuntimeError(f"emulator admin {action}: {response.status_code} {response.text}")
        return response.json() if response.content else None

    def seed(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self.admin("POST", "seed", spec)

    def read_state(self) -> dict[str, Any]:
        return self.admin("GET", "state")

    def read_requests(self, since: int = 0) -> list[dict[str, Any]]:
        return self.admin("GET", "requests", since=since)

    def set_faults(self, **spec: Any) -> None:
        self.admin("POST", "faults", spec)

    def configure(self, **spec: Any) -> None:
        self.admin("POST", "config", spec)

    def reset(self) -> None:
        self.admin("POST", "reset")
