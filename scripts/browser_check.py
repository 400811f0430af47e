"""What the browser checks share: Chromium, its flags, and the report a person opens.

`check_ui.py` (the Prefect UI) and `check_docs.py` (the documentation site's search) each
record their pages in `<out>/results.json`; `<out>/index.html` lists every page checked so
far, its result and its screenshot, so one folder holds the whole browser step of a CI run.
"""

from __future__ import annotations

import html
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# The machine's network is closed: without the background-networking flags Chromium keeps
# opening connections to Google's hosts (refused, many at a time) and looks them up at
# every start. Playwright gives each launch a fresh, empty user-data-dir of its own.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


@dataclass
class Result:
    """One page checked: what is wrong with it (nothing = ok) and where its picture is."""

    page: str
    problems: list[str]
    screenshot: Path

    @property
    def ok(self) -> bool:
        return not self.problems


def find_chromium() -> str | None:
    """`$CHROMIUM`, else the first Chromium on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def launch(playwright: Any, chromium: str) -> Any:
    """Headless Chromium from the system, never a browser Playwright downloads."""
    return playwright.chromium.launch(executable_path=chromium, headless=True,
                                      args=CHROMIUM_ARGS)


def record(check: str, results: list[Result], out: Path) -> None:
    """Print each page with ok/FAILED and add them to `out`'s results.json and index.html."""
    for result in results:
        status = "ok" if result.ok else "FAILED: " + "; ".join(result.problems)
        print(f"  {result.page:26} {status}  ({result.screenshot})")
    store = out / "results.json"
    everything = json.loads(store.read_text()) if store.exists() else {}
    everything[check] = [{"page": r.page, "ok": r.ok, "problems": r.problems,
                          "screenshot": r.screenshot.name} for r in results]
    store.write_text(json.dumps(everything, indent=2))
    (out / "index.html").write_text(_index(everything))
    print(f"Screenshots of the {check} check: {out}/ (open {out / 'index.html'})")


def _index(everything: dict[str, list[dict[str, Any]]]) -> str:
    rows = []
    for check, results in everything.items():
        for r in results:
            shot = html.escape(r["screenshot"])
            verdict = "ok" if r["ok"] else "FAILED: " + "; ".join(r["problems"])
            rows.append(
                f'<tr class="{"ok" if r["ok"] else "failed"}"><td>{html.escape(check)}</td>'
                f'<td>{html.escape(r["page"])}</td><td>{html.escape(verdict)}</td>'
                f'<td><a href="{shot}"><img src="{shot}" alt="{shot}" width="320"></a></td>'
                "</tr>")
    return ("<!doctype html><meta charset=utf-8><title>Browser checks</title><style>"
            "body{font-family:sans-serif}td{vertical-align:top;padding:4px 8px}"
            "tr.failed td{background:#fdd}tr.ok td:nth-child(3){color:#070}</style>"
            "<h1>Browser checks</h1><table><tr><th>check</th><th>page</th><th>result</th>"
            "<th>screenshot</th></tr>" + "".join(rows) + "</table>\n")
