"""Check the built documentation site in a real browser: `python scripts/check_docs.py`.

Serves the built site (`mkdocs build --strict -d site`) on loopback, opens it in headless
Chromium, types a task name into the Material search box and checks that the search
finds the task's entry in the API reference, then follows that result to the entry.
Screenshots go to `--out` beside the Prefect UI check's, listed in its `index.html`.
Exit status 0 = found, 1 = not found or a JavaScript error, 3 = no Chromium here.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from browser_check import Result, find_chromium, launch, record


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(site: Path) -> Iterator[str]:
    """The site over HTTP on a free loopback port (search needs http, not file://)."""
    handler = functools.partial(_Quiet, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def check_search(url: str, chromium: str, out: Path, term: str, anchor: str,
                 wait_ms: int = 15_000) -> list[Result]:
    """Search for `term`; a result must link to `anchor`, and following it must show it."""
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(url)
        box = tab.locator("input.md-search__input")  # in the header at desktop width
        box.click()
        box.type(term, delay=30)
        hit = tab.locator(f".md-search-result a[href*='#{anchor}']").first
        problems: list[str] = []
        try:
            hit.wait_for(timeout=wait_ms)
        except Exception:  # reported as the problem below, with what was shown
            shown = "nothing"
            with contextlib.suppress(Exception):
                shown = tab.locator(".md-search-result__meta").first.inner_text(timeout=2000)
            problems.append(f"searching {term!r} lists no link to #{anchor} ({shown!r})")
        shot = out / "docs-search.png"
        tab.screenshot(path=str(shot))
        results.append(Result(f"docs-search {term}", problems + _js(errors), shot))
        if not problems:
            hit.click()
            entry = tab.locator(f"[id='{anchor}']")
            try:
                tab.wait_for_function("anchor => location.hash === '#' + anchor", arg=anchor,
                                      timeout=wait_ms)
                entry.first.wait_for(timeout=wait_ms)
                found = []
            except Exception:  # reported as the problem, with where the click led
                found = [f"the result leads to {tab.url}, not to the entry #{anchor}"]
            shot = out / "docs-search-result.png"
            tab.screenshot(path=str(shot))
            results.append(Result("docs-search-result", found + _js(errors), shot))
        browser.close()
    return results


def _js(errors: list[str]) -> list[str]:
    return [f"JavaScript error: {e}" for e in errors]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/check_docs.py")
    parser.add_argument("--site", default="site", help="the built site (mkdocs build -d)")
    parser.add_argument("--out", default="ui-check", help="where screenshots are saved")
    parser.add_argument("--term", default="roll_project_secret_api_key",
                        help="a task name to search for")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("No Chromium found (set CHROMIUM or `apt-get install chromium`): not checked.")
        return 3
    site, out = Path(args.site).resolve(), Path(args.out).resolve()
    if not (site / "index.html").exists():
        print(f"No built site in {site}: run `mkdocs build --strict -d {args.site}` first.")
        return 1
    out.mkdir(parents=True, exist_ok=True)
    with serve(site) as url:
        results = check_search(url, chromium, out, args.term,
                               f"prefect_posthog.tasks.{args.term}")
    print("Documentation site search:")
    record("docs", results, out)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
