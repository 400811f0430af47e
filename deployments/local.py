"""Bring the deployments up locally with one command.

``python -m prefect_posthog.deployments.local`` starts a Prefect server on loopback, a
PostHog emulator with demo data (unless ``POSTHOG_HOST``, ``POSTHOG_PERSONAL_API_KEY`` and
``POSTHOG_PROJECT_ID`` name a real PostHog), registers the blocks, creates the process work
pool, deploys ``prefect.yaml`` and starts a worker. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

PREFECT_YAML = Path(__file__).with_name("prefect.yaml")
EMULATOR_KEY = "phx_local_emulator_key"
POOL = "posthog"
# Leases survive a server restart only in the filesystem storage (the default is memory).
LEASE_STORAGE = "prefect.server.concurrency.lease_storage.filesystem"


def _free_port() -> int:
    from prefect_posthog.emulator import free_port

    return free_port()


class LocalStack:
    """A Prefect server, an optional emulator and a worker, as child processes.

    The server keeps concurrency leases (the secret jobs' project lock) on disk, so a
    server restart does not strand a held project (Prefect keeps them in memory by default).

    Args:
        home: PREFECT_HOME for the server and worker.
        port: Prefect server port (0 = any free port).
        emulator_port: Emulator port (0 = any free port); unused with a real PostHog.
        env: Extra environment for every process (e.g. server settings).
    """

    def __init__(self, home: Path, port: int = 4200, emulator_port: int = 8010,
                 env: dict[str, str] | None = None) -> None:
        self.home = Path(home)
        self.port = port or _free_port()
        self.emulator_port = emulator_port or _free_port()
        self.processes: list[subprocess.Popen] = []
        self.real = all(os.environ.get(k) for k in (
            "POSTHOG_HOST", "POSTHOG_PERSONAL_API_KEY", "POSTHOG_PROJECT_ID"))
        self.env = {**os.environ, "PREFECT_HOME": str(self.home),
                    "PREFECT_API_URL": self.api_url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "DO_NOT_TRACK": "1", "PREFECT_WORKER_QUERY_SECONDS": "1",
                    "PREFECT_WORKER_PREFETCH_SECONDS": "1", "PREFECT_LOGGING_LEVEL": "INFO",
                    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": LEASE_STORAGE, **(env or {})}

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen:
        self.home.mkdir(parents=True, exist_ok=True)
        handle = (self.home / log).open("w")
        proc = subprocess.Popen(args, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.processes.append(proc)
        return proc

    def _prefect(self, *args: str) -> None:
        result = subprocess.run([sys.executable, "-m", "prefect", *args], env=self.env,
                                capture_output=True, text=True, timeout=180)
        if result.returncode != 0:
            # Prefect's own output says why (block and pool names only, no secrets).
            raise RuntimeError(f"`prefect {' '.join(args)}` failed:\n"
                               f"{(result.stdout + result.stderr)[-2000:]}")

    def _wait(self, url: str, what: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"{what} exited early; see logs in {self.home}")
            time.sleep(0.3)
        raise RuntimeError(f"{what} did not answer at {url} within {timeout:.0f}s")

    def start_server(self) -> LocalStack:
        """Start the Prefect server alone; returns once it answers."""
        try:
            self._spawn([sys.executable, "-m", "prefect", "server", "start", "--host",
                         "127.0.0.1", "--port", str(self.port)], "server.log")
            self._wait(f"{self.api_url}/health", "the Prefect server")
        except BaseException:
            self.down()
            raise
        return self

    def up(self) -> LocalStack:
        """Start everything and deploy; returns once the worker is polling."""
        try:
            self._spawn([sys.executable, "-m", "prefect", "server", "start", "--host",
                         "127.0.0.1", "--port", str(self.port)], "server.log")
            if not self.real:
                self._spawn([sys.executable, "-m", "prefect_posthog.emulator", "--port",
                             str(self.emulator_port), "--personal-api-key", EMULATOR_KEY,
                             "--seed-demo", "--no-rate-limit"], "emulator.log")
                self._wait(f"{self.emulator_url}/_emulator/health", "the emulator")
            self._wait(f"{self.api_url}/health", "the Prefect server")
            self._register_blocks()
            self._prefect("work-pool", "create", POOL, "--type", "process", "--overwrite")
            self._prefect("--no-prompt", "deploy", "--all", "--prefect-file", str(PREFECT_YAML))
            subprocess.run([sys.executable, "-m", "prefect_posthog.deployments.pin_blocks"],
                           env=self.env, check=True, capture_output=True, timeout=120)
            self._spawn([sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL],
                        "worker.log")
        except BaseException:
            self.down()
            raise
        return self

    def _register_blocks(self) -> None:
        script = (
            "import os\n"
            "from prefect.blocks.notifications import CustomWebhookNotificationBlock\n"
            "from prefect_posthog import PostHogCredentials\n"
            "PostHogCredentials(host=os.environ['PH_HOST'], personal_api_key="
            "os.environ['PH_KEY'], project_id=os.environ['PH_PROJECT'], rate_limit="
            "os.environ['PH_RATE']).save('posthog', overwrite=True)\n"
            "CustomWebhookNotificationBlock(name='posthog-notify', url=os.environ['PH_HOOK'], "
            "json_data={'subject': '{{subject}}', 'body': '{{body}}'}, allow_private_urls=True"
            ").save('posthog-notify', overwrite=True)\n")
        env = {**self.env, "PH_HOST": os.environ.get("POSTHOG_HOST", self.emulator_url),
               "PH_KEY": os.environ.get("POSTHOG_PERSONAL_API_KEY", EMULATOR_KEY),
               "PH_PROJECT": os.environ.get("POSTHOG_PROJECT_ID", "1"),
               "PH_RATE": "480/min,4800/h" if self.real else "",
               "PH_HOOK": os.environ.get("POSTHOG_NOTIFY_URL",
                                         f"{self.emulator_url}/_emulator/webhook")}
        subprocess.run([sys.executable, "-c", script], env=env, check=True,
                       capture_output=True, timeout=120)
        subprocess.run([sys.executable, "-m", "prefect", "block", "register", "-m",
                        "prefect_posthog"], env=self.env, check=True, capture_output=True,
                       timeout=120)

    def down(self) -> None:
        """Stop every process started, children included."""
        for proc in reversed(self.processes):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.processes.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prefect_posthog.deployments.local")
    parser.add_argument("--home", default=".prefect-local", help="PREFECT_HOME to use")
    parser.add_argument("--port", type=int, default=4200, help="Prefect server port")
    parser.add_argument("--emulator-port", type=int, default=8010, help="emulator port")
    args = parser.parse_args(argv)
    stack = LocalStack(Path(args.home).resolve(), args.port, args.emulator_port).up()
    print(f"Prefect UI:  http://127.0.0.1:{stack.port}")
    print(f"PostHog:     {'real, from POSTHOG_HOST' if stack.real else stack.emulator_url}")
    print("Deployments: posthog-rotate-project-secret-api-keys/monthly, "
          "posthog-rotate-project-secret-api-keys/overlap (paused), "
          "posthog-audit-project-secret-api-keys/hourly-audit, "
          "posthog-bulk-update-group-properties/update-group-properties, "
          "posthog-reset-sharing-passwords/reset-share-passwords, "
          "posthog-follow-key-rotation/follow-flag-key-rotation (worker on pool 'posthog')")
    print("Ctrl-C stops the server, the worker and the emulator.")
    try:
        while all(p.poll() is None for p in stack.processes):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
