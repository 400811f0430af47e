"""Benchmark 2: calls made / (k changed properties + the reads a plan needs at minimum).

n groups, k of them with one differing property. The least a correct plan can read is
one read proving the project exists (before any write) plus one list page per 100 groups
(or one find per group, if fewer); the least it can write is k. Target 1.00.

    python benchmarks/call_economy.py
"""

from __future__ import annotations

import math

from _common import KEY, quiet_prefect, ratio_line

from prefect_posthog import PostHogCredentials
from prefect_posthog.emulator import Emulator
from prefect_posthog.flows import GroupPropertyUpdate, bulk_update_group_properties

CASES = [(2000, 150), (2000, 0), (300, 300), (50, 5)]


def main() -> None:
    with quiet_prefect(), Emulator(personal_api_keys={KEY: None}, rate_limit="") as posthog:
        credentials = PostHogCredentials(host=posthog.url, personal_api_key=KEY,
                                         project_id=1, rate_limit="")
        for n, k in CASES:
            posthog.reset()
            posthog.seed({"personal_api_keys": [{"value": KEY}],
                          "groups": [{"group_type_index": 0, "group_key": f"g{i:05d}",
                                      "group_properties": {"plan": "free", "i": i}}
                                     for i in range(n)]})
            rows = [GroupPropertyUpdate(group_type_index=0, group_key=f"g{i:05d}",
                                        set={"plan": "pro" if i < k else "free", "i": i})
                    for i in range(n)]
            since = posthog.read_requests()[-1]["seq"] if posthog.read_requests() else 0
            bulk_update_group_properties(credentials, updates=rows, batch_size=5000,
                                         write_path="api")
            calls = len([r for r in posthog.read_requests(since) if r["operation"]])
            minimum = k + 1 + min(math.ceil(n / 100), n)
            print(ratio_line(f"n={n} k={k}: calls {calls} / minimum {minimum}",
                             calls / minimum, "1.00"))


if __name__ == "__main__":
    main()
