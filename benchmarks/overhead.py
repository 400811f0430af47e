"""Benchmark 3: library overhead. The bulk flow (plan + writes, Prefect tasks, retries,
limiter) against a plain httpx loop doing the same writes at the same concurrency, in the
same run against the unthrottled emulator: throughput ratio (target >= 0.5).

    python benchmarks/overhead.py
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from _common import KEY, quiet_prefect, ratio_line

from prefect_posthog import PostHogCredentials
from prefect_posthog.emulator import Emulator
from prefect_posthog.flows import GroupPropertyUpdate, bulk_update_group_properties

N, CONCURRENCY, ROUNDS = 3000, 8, 2


def plain_loop(url: str, value: str) -> float:
    start = time.perf_counter()
    with httpx.Client(base_url=f"{url}/api/projects/1/",
                      headers={"Authorization": f"Bearer {KEY}"}) as http:
        def write(i: int) -> None:
            http.post("groups/update_property/", params={"group_type_index": 0,
                      "group_key": f"g{i:05d}"}, json={"key": "v", "value": value}
                      ).raise_for_status()
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(write, range(N)))
    return N / (time.perf_counter() - start)


def library(credentials: PostHogCredentials, value: str) -> float:
    rows = [GroupPropertyUpdate(group_type_index=0, group_key=f"g{i:05d}", set={"v": value})
            for i in range(N)]
    start = time.perf_counter()
    report = bulk_update_group_properties(credentials, updates=rows, write_path="api",
                                          max_concurrency=CONCURRENCY,
                                          batch_size=N)
    assert report.applied == N
    return N / (time.perf_counter() - start)


def main() -> None:
    with quiet_prefect(), Emulator(personal_api_keys={KEY: None}, rate_limit="") as posthog:
        posthog.seed({"groups": [{"group_type_index": 0, "group_key": f"g{i:05d}"}
                                 for i in range(N)]})
        credentials = PostHogCredentials(host=posthog.url, personal_api_key=KEY,
                                         project_id=1, rate_limit="")
        plain, lib = [], []
        for r in range(ROUNDS):  # alternate so both see the same machine load
            plain.append(plain_loop(posthog.url, f"p{r}"))
            lib.append(library(credentials, f"l{r}"))
    print(f"plain httpx loop: {max(plain):.0f} writes/s; bulk flow: {max(lib):.0f} writes/s "
          "(incl. planning reads and Prefect task overhead)")
    print(ratio_line("throughput ratio (flow/plain)", max(lib) / max(plain), ">= 0.5"))


if __name__ == "__main__":
    main()
