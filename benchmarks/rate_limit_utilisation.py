"""Benchmark 1: how much of PostHog's rate budget a bulk update uses, and how many 429s.

PostHog's window scaled down to 120 requests per 15 s so a run takes under a minute:
achieved request rate / allowed rate (target >= 0.95) and share of 429s (target <= 1 %).

    python benchmarks/rate_limit_utilisation.py
"""

from __future__ import annotations

from _common import KEY, quiet_prefect, ratio_line

from prefect_posthog import PostHogCredentials
from prefect_posthog.emulator import Emulator
from prefect_posthog.flows import GroupPropertyUpdate, bulk_update_group_properties

# 355 writes + 4 list pages (planning) + 1 read of the group types (the project check) =
# 360 requests: exactly 3 full windows. One more would open a fourth window and halve the
# measured rate.
LIMIT, PERIOD, GROUPS = 120, 15.0, 355


def main() -> None:
    rate = f"{LIMIT}/{int(PERIOD)}s"
    with quiet_prefect(), Emulator(personal_api_keys={KEY: None}, rate_limit=rate) as posthog:
        posthog.seed({"groups": [{"group_type_index": 0, "group_key": f"g{i:04d}"}
                                 for i in range(GROUPS)]})
        credentials = PostHogCredentials(host=posthog.url, personal_api_key=KEY,
                                         project_id=1, rate_limit=rate)
        report = bulk_update_group_properties(credentials, max_concurrency=8, write_path="api",
                                              updates=[
            GroupPropertyUpdate(group_type_index=0, group_key=f"g{i:04d}", set={"n": i})
            for i in range(GROUPS)])
        log = [r for r in posthog.read_requests() if r["operation"]]
    times = sorted(r["time"] for r in log)
    throttled = sum(1 for r in log if r["status"] == 429)
    # After the first full window, a perfect client sends `LIMIT` requests per `PERIOD`.
    achieved = (len(log) - LIMIT) / (times[-1] - times[0])
    allowed = LIMIT / PERIOD
    print(f"requests {len(log)}, 429s {throttled}, span {times[-1] - times[0]:.1f}s, "
          f"writes {report.writes}, failed {report.failed}")
    print(ratio_line("utilisation (achieved/allowed rate)", achieved / allowed, ">= 0.95"))
    print(ratio_line("429 share", throttled / len(log), "<= 0.01"))


if __name__ == "__main__":
    main()
