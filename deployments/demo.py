"""The main job: the three flows end to end against a local PostHog emulator.

``python -m prefect_posthog.deployments.demo`` starts the emulator with demo data, a local
webhook receiver for notifications and a temporary Prefect API, then runs:

1. a bulk property update of 3,000 companies (a third of them change plan),
2. a rotation of project secret API keys older than 30 days, with a notification,
3. a sharing-password reset of a password-protected insight, rotating its link,

and prints a summary. It never touches a real PostHog.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    # Run as the main job: keep its Prefect database apart from the user's own profile
    # (before Prefect reads its settings), and stay quiet and offline-friendly.
    os.environ.setdefault("PREFECT_HOME", str(Path.cwd() / ".prefect-demo"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")

import httpx
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.blocks.system import Secret
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from prefect_posthog import PostHogCredentials
from prefect_posthog.emulator import Emulator
from prefect_posthog.emulator.seed import demo_spec
from prefect_posthog.flows import (
    KeySelector,
    SharingTarget,
    bulk_update_group_properties,
    reset_sharing_passwords,
    rotate_project_secret_api_keys,
)

DEMO_KEY = "phx_demo_personal_key"  # unlocks only the local emulator
GROUPS = 3000


class _Receiver(BaseHTTPRequestHandler):
    messages: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.messages.append(json.loads(body or b"{}"))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _check(emulator: Emulator, value: str) -> bool:
    """Whether a consumer with this value can load the flags (what PostHog's SDKs poll)."""
    token = emulator.read_state()["projects"]["1"]["api_token"]
    response = httpx.get(f"{emulator.url}/flags/definitions", params={"token": token},
                         headers={"Authorization": f"Bearer {value}"})
    return response.status_code == 200


def main() -> int:
    started = time.monotonic()
    webhook = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=webhook.serve_forever, daemon=True).start()
    # Self-hosted mode (no rate limit) keeps the demo short; the benchmarks use PostHog's.
    with Emulator(personal_api_keys={DEMO_KEY: None}, rate_limit="",
                  ingestion_lag=1.0) as emulator, \
            temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        seeded = emulator.seed(demo_spec(groups=GROUPS))
        old_keys = {k["label"]: k["value"] for k in seeded["project_secret_api_keys"]}
        print(f"PostHog emulator on {emulator.url} with {GROUPS} companies, 5 insights, "
              "2 project secret API keys")
        credentials = PostHogCredentials(host=emulator.url, personal_api_key=DEMO_KEY,
                                         project_id=1, rate_limit="")
        notification = CustomWebhookNotificationBlock(
            name="demo-webhook", url=f"http://127.0.0.1:{webhook.server_address[1]}/notify",
            json_data={"subject": "{{subject}}", "body": "{{body}}"}, allow_private_urls=True)

        print("\n1. Bulk group property update (plan, then write only what differs)")
        updates = [{"group_type_index": 0, "group_key": f"company-{i:05d}",
                    "set": {"plan": "enterprise" if i % 3 == 0 else None, "synced": True}}
                   for i in range(GROUPS)]
        for row in updates:
            if row["set"]["plan"] is None:
                del row["set"]["plan"]
        bulk = bulk_update_group_properties(credentials, updates=updates, max_concurrency=8)
        print(f"   {bulk.total} rows: {bulk.applied} applied, {bulk.unchanged} unchanged, "
              f"{bulk.skipped} skipped, {bulk.failed} failed; {bulk.reads} read calls, "
              f"{bulk.writes} write calls")

        print("\n1b. The same companies through ingestion ($groupidentify), verified by reading "
              "back")
        regions = [{"group_type_index": 0, "group_key": f"company-{i:05d}",
                    "set": {"region": ("eu", "us", "apac")[i % 3]}} for i in range(GROUPS)]
        captured = bulk_update_group_properties(credentials, updates=regions,
                                                write_path="capture", verify_timeout_seconds=60)
        print(f"   {captured.total} rows: {captured.applied} applied and seen in PostHog, "
              f"{captured.failed} failed; {captured.events} events sent, {captured.reads} read "
              f"calls, {captured.writes} management API writes")

        print("\n2. Project secret API key rotation (keys older than 30 days)")
        rotation = rotate_project_secret_api_keys(
            credentials, KeySelector(older_than_days=30), notification=notification)
        for key in rotation.outcomes:
            stored = Secret.load(f"posthog-psak-{key.label}").get()
            print(f"   {key.label} ({key.mask_value}): {key.status}, stored in {key.stored_in};"
                  f" new value works: {_check(emulator, stored)}, old value revoked: "
                  f"{not _check(emulator, old_keys[key.label])}")
        print(f"   notification delivered: {rotation.notified}")

        print("\n3. Sharing password reset (insight 1, rotating its link)")
        reset = reset_sharing_passwords(credentials, [SharingTarget(resource="insight", id="1")],
                                        refresh_link=True, notification=notification)
        for target in reset.targets:
            print(f"   insight {target.id}: {target.status}, {target.removed_passwords} old "
                  f"password(s) removed, link {target.share_url}, password in {target.stored_in}")

        print(f"\nNotifications received by the local webhook: {len(_Receiver.messages)}")
        print("Artifacts: posthog-bulk-update, posthog-key-rotation, posthog-password-reset "
              "(and their -summary); see them with `prefect artifact ls` using "
              f"PREFECT_HOME={os.environ.get('PREFECT_HOME', '~/.prefect')}")
    webhook.shutdown()
    print(f"Done in {time.monotonic() - started:.1f}s.")
    ok = (bulk.failed == 0 and captured.applied == GROUPS
          and all(k.status == "rotated" for k in rotation.outcomes)
          and all(t.status == "reset" for t in reset.targets))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
