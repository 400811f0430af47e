"""Benchmark 5: 100,000 rows at PostHog Cloud's real limits, every row verified.

An emulator with PostHog's budget (480/min, 4,800/h per key) and a 5 s ingestion lag holds
100,000 companies; the input changes one or two properties of each. The flow runs with
``write_path="auto"`` in a child process, which reports its wall time and peak RSS.
Targets: every row applied and verified, <= 5 minutes, peak RSS <= 600 MiB. It also prints
how long the management-API path would need for the same writes under the same budget, and
the ratio.

    python benchmarks/bulk_at_scale.py [ROWS]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from _common import emulator_process

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
RATE = "480/min,4800/h"

CHILD = r"""
import resource, sys, time
sys.path.insert(0, sys.argv[3])
from _common import KEY, quiet_prefect
from prefect_posthog import PostHogCredentials
from prefect_posthog.flows import bulk_update_group_properties
with quiet_prefect():
    creds = PostHogCredentials(host=sys.argv[1], personal_api_key=KEY, project_id=1,
                               rate_limit=sys.argv[4])
    start = time.perf_counter()
    report = bulk_update_group_properties(creds, source_path=sys.argv[2], write_path="auto",
                                          max_report_items=100)
    wall = time.perf_counter() - start
print("RESULT", report.model_dump_json(exclude={"items"}))
print("WALL", wall)
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main() -> None:
    from prefect_posthog.client import parse_rates
    from prefect_posthog.flows.bulk_plan import api_minutes

    with emulator_process("--rate-limit", RATE, "--ingestion-lag", "5") as url:
        httpx.post(f"{url}/_emulator/seed", timeout=300, json={"groups": [
            {"group_type_index": 0, "group_key": f"company-{i:06d}",
             "group_properties": {"plan": "free", "seats": 1}} for i in range(ROWS)]})
        path = Path(tempfile.mkdtemp()) / "companies.jsonl"
        changes = 0
        with path.open("w") as handle:
            for i in range(ROWS):
                wanted = {"plan": "pro"} if i % 2 else {"plan": "team", "seats": i % 500 + 2}
                changes += len(wanted)
                handle.write(json.dumps({"group_type_index": 0,
                                         "group_key": f"company-{i:06d}", "set": wanted}) + "\n")
        out = subprocess.run([sys.executable, "-c", CHILD, url, str(path),
                              str(Path(__file__).parent), RATE], capture_output=True, text=True,
                             env={**os.environ, "PREFECT_LOGGING_LEVEL": "ERROR"})
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        report = json.loads(out.stdout.split("RESULT", 1)[1].split("\n", 1)[0])
        wall = float(out.stdout.split("WALL")[1].split()[0])
        peak = int(out.stdout.split("PEAK_RSS_KB")[1].split()[0]) / 1024
        state = httpx.get(f"{url}/_emulator/ingestion").json()
    # The management-API path: one list page per 100 groups to plan, one write per change.
    api_calls = changes + -(-ROWS // 100) + 1
    projected = api_minutes(api_calls, parse_rates(RATE)) * 60 + 60
    print(f"rows {report['total']}: applied {report['applied']}, failed {report['failed']}, "
          f"path {report['write_path']}, events {report['events']}, reads {report['reads']}, "
          f"writes {report['writes']} (emulator ingested {state['applied']} events)")
    print(f"wall {wall:.0f} s (target <= 300 s); peak RSS {peak:.0f} MiB (target <= 600 MiB)")
    print(f"management API alone: {api_calls} calls, ~{projected / 3600:.1f} h under {RATE}; "
          f"ratio {projected / wall:.0f}x")
    ok = (report["applied"] == ROWS and report["failed"] == 0 and wall <= 300 and peak <= 600)
    print("OK" if ok else "TARGET MISSED")


if __name__ == "__main__":
    main()
