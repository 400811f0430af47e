"""Command line: ``python -m prefect_posthog.emulator --port N [options]``.

A stable interface: users run it to test their own pipelines offline.
"""

from __future__ import annotations

import argparse
import secrets
import sys

from prefect_posthog.emulator.constants import (
    DEFAULT_INGESTION_LAG,
    DEFAULT_PORT,
    DEFAULT_RATE_LIMIT,
)
from prefect_posthog.emulator.faults import FAULT_KINDS, Faults
from prefect_posthog.emulator.seed import apply_seed, demo_spec
from prefect_posthog.emulator.server import Emulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m prefect_posthog.emulator",
        description="A local PostHog of the groups, sharing and project secret API key API.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default loopback)")
    parser.add_argument("--personal-api-key", action="append", default=[],
                        metavar="KEY[:SCOPE,SCOPE...]",
                        help="accept this personal API key (repeatable; no scopes = all)")
    limits = parser.add_mutually_exclusive_group()
    limits.add_argument("--rate-limit", default=DEFAULT_RATE_LIMIT,
                        help="per-key windows, e.g. 480/min,4800/h or 120/15s")
    limits.add_argument("--no-rate-limit", action="store_true",
                        help="no rate limiting (self-hosted mode)")
    parser.add_argument("--faults", default="",
                        help=f"fault kinds to inject: {','.join(FAULT_KINDS)}")
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="probability of a fault per request")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the fault RNG")
    parser.add_argument("--ingestion-lag", type=float, default=DEFAULT_INGESTION_LAG,
                        metavar="SECONDS",
                        help="seconds before a captured $groupidentify reaches the groups")
    parser.add_argument("--no-advanced-permissions", action="store_true",
                        help="the organization lacks Advanced Permissions")
    parser.add_argument("--seed-demo", action="store_true",
                        help="load demo data (3000 companies, insights, keys, flags)")
    parser.add_argument("--state", metavar="FILE",
                        help="load state from FILE and save it there on shutdown")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    keys: dict[str, list[str] | None] = {}
    for item in args.personal_api_key:
        key, _, scopes = item.partition(":")
        keys[key] = [s for s in scopes.split(",") if s] or None
    generated = None
    if not keys:
        generated = "phx_" + secrets.token_urlsafe(24)
        keys[generated] = None
    try:
        faults = Faults(kinds=tuple(k for k in args.faults.split(",") if k),
                        rate=args.fault_rate, seed=args.fault_seed)
        emulator = Emulator(args.port, args.host, personal_api_keys=keys,
                            rate_limit="" if args.no_rate_limit else args.rate_limit,
                            faults=faults, advanced_permissions=not args.no_advanced_permissions,
                            state_file=args.state, ingestion_lag=args.ingestion_lag)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.seed_demo:
        apply_seed(emulator.state, demo_spec())
    def ready() -> None:
        if generated:
            # Printed once so a local user can copy it; it only unlocks this local emulator.
            print(f"personal API key (all scopes): {generated}", flush=True)
        print(f"PostHog emulator listening on {emulator.url} (project id 1)", flush=True)

    emulator.app.on_startup = ready
    emulator.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
