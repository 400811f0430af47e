"""Benchmark 5: a million rows at PostHog Cloud's real limits, every row read back.

For each size (1,000,000 and 100,000 rows) and each input format (Parquet and JSONL), a
fresh emulator in its own process with PostHog's budget (480/min, 4,800/h per key) and a
5 s ingestion lag holds as many companies; the input changes one or two properties of
each. The flow runs with ``write_path="auto"`` in a child process, which reports its wall
time, its peak RSS and where the time went (the report's ``timings``; "Prefect" is the
rest of the wall time: the flow run, the project check, task runs and artifacts).

Targets: every row applied and verified, <= 5 minutes and peak RSS <= 1 GiB at 1M rows,
and 1M rows <= 2x the peak RSS of 100k rows (same format).

    python benchmarks/bulk_at_scale.py [SIZES] [FORMATS]   # e.g. 100000 jsonl
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
from _common import emulator_process

SIZES = [int(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "1000000,100000").split(",")]
FORMATS = (sys.argv[2] if len(sys.argv) > 2 else "parquet,jsonl").split(",")
RATE = "480/min,4800/h"
WALL_TARGET, RSS_TARGET, RATIO_TARGET = 300.0, 1024.0, 2.0

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


def wanted(i: int) -> dict:
    return {"plan": "pro"} if i % 2 else {"plan": "team", "seats": i % 500 + 2}


def write_inputs(rows: int, folder: Path) -> dict[str, Path]:
    """The same changes as JSONL and as Parquet (a null seats cell: no change)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = {"jsonl": folder / f"companies-{rows}.jsonl",
             "parquet": folder / f"companies-{rows}.parquet"}
    with paths["jsonl"].open("w") as handle:
        for i in range(rows):
            handle.write(json.dumps({"group_type_index": 0, "group_key": f"company-{i:07d}",
                                     "set": wanted(i)}) + "\n")
    with pq.ParquetWriter(paths["parquet"], pa.schema([
            ("group_type_index", pa.int8()), ("group_key", pa.string()),
            ("plan", pa.string()), ("seats", pa.int32())])) as writer:
        for start in range(0, rows, 100_000):
            part = range(start, min(rows, start + 100_000))
            writer.write_table(pa.table({
                "group_type_index": pa.array([0] * len(part), pa.int8()),
                "group_key": [f"company-{i:07d}" for i in part],
                "plan": [wanted(i)["plan"] for i in part],
                "seats": pa.array([wanted(i).get("seats") for i in part], pa.int32())}))
    return paths


def run(rows: int, path: Path) -> dict:
    with emulator_process("--rate-limit", RATE, "--ingestion-lag", "5") as url:
        httpx.post(f"{url}/_emulator/seed", timeout=600, json={"generate_groups": {
            "group_type_index": 0, "count": rows, "key_format": "company-{i:07d}",
            "group_properties": {"plan": "free", "seats": 1}}})
        out = subprocess.run([sys.executable, "-c", CHILD, url, str(path),
                              str(Path(__file__).parent), RATE], capture_output=True, text=True,
                             env={**os.environ, "PREFECT_LOGGING_LEVEL": "ERROR"})
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        ingested = httpx.get(f"{url}/_emulator/ingestion").json()["applied"]
    report = json.loads(out.stdout.split("RESULT", 1)[1].split("\n", 1)[0])
    wall = float(out.stdout.split("WALL")[1].split()[0])
    peak = int(out.stdout.split("PEAK_RSS_KB")[1].split()[0]) / 1024
    return {"rows": rows, "report": report, "wall": wall, "peak": peak, "ingested": ingested}


def show(fmt: str, result: dict) -> bool:
    report, wall = result["report"], result["wall"]
    timings = dict(report["timings"])
    timings["Prefect"] = wall - sum(timings.values())
    spent = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    print(f"{fmt} {result['rows']:>9,} rows: applied {report['applied']:,}, failed "
          f"{report['failed']}, path {report['write_path']}, events {report['events']:,}, "
          f"reads {report['reads']}, writes {report['writes']} (emulator ingested "
          f"{result['ingested']:,}); wall {wall:.0f} s, peak RSS {result['peak']:.0f} MiB "
          f"({spent})")
    return report["applied"] == result["rows"] and report["failed"] == 0


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="posthog-bench-"))
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    results: dict[tuple[str, int], dict] = {}
    ok = True
    for rows in SIZES:
        paths = write_inputs(rows, folder)
        for fmt in FORMATS:
            started = time.perf_counter()
            results[(fmt, rows)] = result = run(rows, paths[fmt])
            ok = show(fmt, result) and ok
            print(f"  (with seeding and start-up: {time.perf_counter() - started:.0f} s; "
                  f"load average {os.getloadavg()[0]:.2f})")
    for fmt in FORMATS:
        big, small = results.get((fmt, max(SIZES))), results.get((fmt, min(SIZES)))
        if big and big["rows"] >= 1_000_000:
            ok = ok and big["wall"] <= WALL_TARGET and big["peak"] <= RSS_TARGET
            print(f"{fmt} 1M: wall {big['wall']:.0f} s (target <= {WALL_TARGET:.0f}), peak "
                  f"RSS {big['peak']:.0f} MiB (target <= {RSS_TARGET:.0f})")
        if big and small and big is not small:
            ratio = big["peak"] / small["peak"]
            ok = ok and ratio <= RATIO_TARGET
            print(f"{fmt} peak RSS {big['rows']:,} / {small['rows']:,} rows: {ratio:.2f} "
                  f"(target <= {RATIO_TARGET})")
    print("OK" if ok else "TARGET MISSED")


if __name__ == "__main__":
    main()
