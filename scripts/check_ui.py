"""Check the Prefect UI in a real browser: `python scripts/check_ui.py --out ui-check`.

Starts the local stack (Prefect server, worker, PostHog emulator, the deployments with
their block references pinned), runs each job once so it has a report, then opens in
headless Chromium the three custom-run forms, the PostHog Credentials block form and the
three report artifacts. Each page is saved as a screenshot; the check fails on a
JavaScript error, a missing field or an empty block picker.

Needs Chromium (Debian: `apt-get install chromium`) and the `browser` extra
(`pip install '.[browser]'`, which brings Playwright without its own browsers). A developer
and CI tool, not part of the installed package. Exit status 0 = every page passed, 1 = a
check failed, 3 = no Chromium here.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from browser_check import Result, find_chromium, launch, record

from prefect_posthog.deployments.local import LocalStack

REPORT_KEYS = ["posthog-bulk-update-dry-run", "posthog-key-rotation", "posthog-password-reset"]


@dataclass
class Page:
    """One page to open: where, what must be on it, and which pickers must show a block."""

    name: str
    path: str
    fields: list[str]
    pickers: dict[str, str] = field(default_factory=dict)  # field -> block name shown


def _api(stack: LocalStack, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """Call the Prefect API, repeating 5xx answers as Prefect's own client does: on two
    loaded cores its SQLite-backed server now and then answers 503 (database locked)."""
    for _ in range(5):
        response = httpx.request(method, f"{stack.api_url}{path}", timeout=30, **kwargs)
        if response.status_code < 500:
            break
        time.sleep(2)
    response.raise_for_status()
    return response


def _deployment_ids(stack: LocalStack) -> dict[str, str]:
    found = _api(stack, "POST", "/deployments/filter", json={}).json()
    return {d["name"]: d["id"] for d in found}


def _run(stack: LocalStack, deployment_id: str, parameters: dict, timeout: float = 300) -> str:
    run = _api(stack, "POST", f"/deployments/{deployment_id}/create_flow_run",
               json={"parameters": parameters})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _api(stack, "GET", f"/flow_runs/{run.json()['id']}").json()["state"]["type"]
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return state
        time.sleep(0.5)
    return "TIMED OUT"


def produce_reports(stack: LocalStack, ids: dict[str, str]) -> list[str]:
    """One run of each job against the emulator, so each report artifact exists."""
    runs = {
        "bulk dry run": (ids["update-group-properties"], {"updates": [
            {"group_type_index": 0, "group_key": "company-00001",
             "set": {"plan": "enterprise", "seats": 900}}], "dry_run": True}),
        "rotation": (ids["monthly"], {}),
        "reset": (ids["reset-share-passwords"],
                  {"targets": [{"resource": "insight", "id": "1"}]}),
    }
    return [f"{what} run ended {state}" for what, (dep, params) in runs.items()
            if (state := _run(stack, dep, params)) != "COMPLETED"]


def artifact_ids(stack: LocalStack, keys: list[str]) -> dict[str, str]:
    """The newest artifact of each key (the key's own page is only a timeline)."""
    found = _api(stack, "POST", "/artifacts/latest/filter",
                 json={"artifacts": {"key": {"any_": keys}}}).json()
    return {a["key"]: a["latest_id"] for a in found}


def pages(found: dict[str, str]) -> list[Page]:
    # A deployment or report that is missing opens a "not found" page, reported as FAILED.
    ids = {name: found.get(name, "missing") for name in (
        "update-group-properties", "monthly", "reset-share-passwords", *REPORT_KEYS)}
    return [
        Page("run-form-bulk-update", f"/deployments/deployment/{ids['update-group-properties']}"
             "/run", ["credentials", "updates", "source_path", "dry_run", "write_path"],
             {"credentials": "posthog"}),
        Page("run-form-rotation", f"/deployments/deployment/{ids['monthly']}/run",
             ["credentials", "selector", "secret_block_name_template", "notification",
              "verify", "dry_run"], {"credentials": "posthog", "notification": "posthog-notify"}),
        Page("run-form-reset", f"/deployments/deployment/{ids['reset-share-passwords']}/run",
             ["credentials", "targets", "new_password", "refresh_link", "notification"],
             {"credentials": "posthog", "notification": "posthog-notify"}),
        Page("block-form", "/blocks/catalog/posthog-credentials/create",
             ["Block Name", "Host", "Personal API key", "Project ID", "@current",
              "Rate limit (empty = off)", "Max Attempts"]),
        Page("artifact-bulk-dry-run", f"/artifacts/artifact/{ids['posthog-bulk-update-dry-run']}",
             ["group_key", "status", "changes", "reason", "company-00001", "→"]),
        Page("artifact-rotation", f"/artifacts/artifact/{ids['posthog-key-rotation']}",
             ["label", "status", "stored_in", "verification", "flags-backend",
              "Secret block"]),
        Page("artifact-reset", f"/artifacts/artifact/{ids['posthog-password-reset']}",
             ["share", "status", "stored_in", "share_url", "insight 1", "reset"]),
    ]


def _picker_problems(text: str, page: Page) -> list[str]:
    """A picker shows its block's name between its field's title and the next field."""
    problems = []
    for name, block in page.pickers.items():
        start = text.find(f"\n{name}")
        if start < 0:
            continue  # reported as a missing field
        later = [text.find(f"\n{other}", start + 1) for other in page.fields if other != name]
        end = min([p for p in later if p > start] or [len(text)])
        if f"\n{block}\n" not in text[start:end]:
            problems.append(f"the {name} picker does not show the block {block!r}")
    return problems


def check_pages(ui_url: str, chromium: str, out: Path, ids: dict[str, str],
                wait_ms: int = 60_000) -> list[Result]:
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        for page in pages(ids):
            tab = browser.new_page(viewport={"width": 1400, "height": 1800})
            errors: list[str] = []
            tab.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            tab.goto(f"{ui_url}{page.path}")
            # The UI renders client-side: wait until the last expected text is on the page.
            with contextlib.suppress(Exception):  # a missing field is reported below
                tab.get_by_text(page.fields[-1], exact=False).first.wait_for(timeout=wait_ms)
            tab.wait_for_timeout(500)
            text = "\n" + tab.inner_text("body") + "\n"
            shot = out / f"{page.name}.png"
            tab.screenshot(path=str(shot), full_page=True)
            problems = [f"JavaScript error: {e}" for e in errors]
            problems += [f"missing {f!r}" for f in page.fields if f not in text]
            problems += _picker_problems(text, page)
            results.append(Result(page.name, problems, shot))
            tab.close()
        browser.close()
    return results


class _Clock:
    """Prints how long each phase took, so the check's share of CI time is visible."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def lap(self, what: str) -> None:
        now = time.monotonic()
        print(f"  {now - self.last:6.1f}s  {what}", flush=True)
        self.last = now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/check_ui.py")
    parser.add_argument("--out", default="ui-check", help="where screenshots are saved")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("No Chromium found (set CHROMIUM or `apt-get install chromium`): not checked.")
        return 3
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    clock = _Clock()
    with tempfile.TemporaryDirectory(prefix="prefect-ui-check-") as home:
        stack = LocalStack(Path(home), port=0, emulator_port=0).up()
        clock.lap("local stack up (server, emulator, deployments, worker)")
        try:
            ids = _deployment_ids(stack)
            failures = produce_reports(stack, ids)
            clock.lap("one run of each job (reports)")
            ids |= artifact_ids(stack, REPORT_KEYS)
            results = check_pages(stack.api_url.removesuffix("/api"), chromium, out, ids)
            clock.lap(f"{len(results)} pages in Chromium")
        finally:
            stack.down()
    print("Prefect UI, page by page:")
    record("prefect-ui", results, out)
    for failure in failures:
        print(f"report run: {failure}")
    return 1 if failures or not all(r.ok for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
