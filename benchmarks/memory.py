"""Benchmark 4: peak RSS of the bulk flow planning 100k rows vs 1k rows (target <= 1.3x).

The emulator (holding 100k groups) runs in its own process so only the flow is measured;
each size runs in a fresh process that reports its own peak RSS.

    python benchmarks/memory.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import emulator_process, ratio_line

GROUPS = 100_000
CHILD = """
import resource, sys
sys.path.insert(0, sys.argv[3])
from _common import KEY, quiet_prefect
from prefect_posthog import PostHogCredentials
from prefect_posthog.flows import bulk_update_group_properties
with quiet_prefect():
    creds = PostHogCredentials(host=sys.argv[1], personal_api_key=KEY, project_id=1,
                               rate_limit="")
    report = bulk_update_group_properties(creds, source_path=sys.argv[2], dry_run=True,
                                          write_path="api",
                                          batch_size=10000, max_report_items=1000)
print("ROWS", report.total, "PLANNED", report.planned, "READS", report.reads)
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main() -> None:
    with emulator_process("--no-rate-limit") as url:
        httpx.post(f"{url}/_emulator/seed", timeout=120, json={"groups": [
            {"group_type_index": 0, "group_key": f"g{i:06d}", "group_properties": {"p": 0}}
            for i in range(GROUPS)]})
        work = Path(tempfile.mkdtemp())
        peaks = {}
        for rows in (1_000, 100_000):
            path = work / f"in-{rows}.jsonl"
            with path.open("w") as handle:
                for i in range(rows):
                    handle.write(json.dumps({"group_type_index": 0, "group_key": f"g{i:06d}",
                                             "set": {"p": 1}}) + "\n")
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", CHILD, url, str(path),
                                  str(Path(__file__).parent)], capture_output=True, text=True,
                                 env={**os.environ, "PREFECT_LOGGING_LEVEL": "ERROR"},
                                 check=True).stdout
            peaks[rows] = int(out.split("PEAK_RSS_KB")[1].split()[0])
            print(f"{rows} rows: {out.splitlines()[0]}; peak RSS {peaks[rows] / 1024:.0f} MiB "
                  f"in {time.perf_counter() - start:.1f}s")
        print(ratio_line("peak RSS 100k rows / 1k rows", peaks[100_000] / peaks[1_000],
                         "<= 1.3"))


if __name__ == "__main__":
    main()
