"""The built wheel installs one namespace and runs a flow from a fresh virtualenv."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import os, sys
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
from prefect import flow
from prefect_posthog import PostHogCredentials
from prefect_posthog.emulator import Emulator
from prefect_posthog.flows import GroupPropertyUpdate, bulk_update_group_properties
import prefect_posthog.tasks as t
assert "site-packages" in t.__file__, t.__file__

@flow
def pipeline(url: str) -> int:
    creds = PostHogCredentials(host=url, personal_api_key="phx_wheel", project_id=1,
                               rate_limit="")
    report = bulk_update_group_properties(creds, updates=[GroupPropertyUpdate(
        group_type_index=0, group_key="w1", set={"plan": "pro"})], create_missing=True)
    return report.applied

with Emulator(personal_api_keys={"phx_wheel": None}) as posthog, \\
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
    print("APPLIED", pipeline(posthog.url))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    uv = Path(sys.executable).parent / "uv"  # installed by ./run next to the interpreter
    # sdist first, then the wheel from it: a stale build/ directory in the checkout can never
    # leak files that are no longer in the source tree into the wheel.
    subprocess.run([str(uv), "build", "-q", "-o", str(out), str(ROOT)], check=True)
    return next(out.glob("prefect_posthog-*.whl"))


def test_wheel_holds_only_the_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"prefect_posthog"}
    for sub in ("blocks", "tasks", "flows", "deployments", "client", "emulator"):
        assert f"prefect_posthog/{sub}/__init__.py" in names
    assert "prefect_posthog/deployments/prefect.yaml" in names
    # Developer tooling (the browser checks, Playwright) stays out of the installed package.
    sources = [zipfile.ZipFile(wheel).read(n) for n in names if n.endswith(".py")]
    assert not any(b"playwright" in source for source in sources)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "prefect_posthog = prefect_posthog" in zipfile.ZipFile(wheel).read(entry).decode()


def test_wheel_runs_a_flow_from_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    # The wheel with its declared dependencies, nothing from the repository.
    subprocess.run([str(uv), "pip", "install", "-q", "--python", str(python), str(wheel)],
                   check=True)
    # The fresh venv talks to the suite's Prefect server, as a user's venv talks to theirs
    # (a temporary server of its own would cost one more server start on two busy cores).
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": "",
           "PREFECT_API_URL": PREFECT_API_URL.value()}
    result = subprocess.run([str(python), "-c", SCRIPT], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "APPLIED 1" in result.stdout
