"""Test helpers: a real local webhook receiver, a hostile proxy, and a key's check the way
its consumers use it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client

PROJECT_TOKEN = "phc_emulator_project_token"  # the emulator's project 1

# Recognisable canaries: no test may ever find these in logs, results or messages.
ADMIN_KEY = "phx_CANARY_admin_key_5e1f0c"
READ_ONLY_KEY = "phx_CANARY_readonly_key_77aa"


def flags_status(base_url: str, value: str, token: str = PROJECT_TOKEN) -> int:
    """What PostHog's flags service answers a project secret key on the route its SDKs poll
    for local evaluation (``GET /flags/definitions?token=<phc_…>``, the key as Bearer)."""
    return httpx.get(f"{base_url}/flags/definitions", params={"token": token},
                     headers={"Authorization": f"Bearer {value}"}, timeout=30).status_code


def authenticates(base_url: str, value: str, token: str = PROJECT_TOKEN) -> bool:
    """Whether a consumer holding ``value`` can load the project's flag definitions."""
    return flags_status(base_url, value, token) == 200


class WebhookReceiver:
    """A real HTTP server on loopback that records POSTed JSON (or fails on purpose)."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.received.append(json.loads(body or b"{}"))
                self.send_response(receiver.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def block(self) -> CustomWebhookNotificationBlock:
        return CustomWebhookNotificationBlock(
            name="test-webhook", url=self.url, allow_private_urls=True,
            json_data={"subject": "{{subject}}", "body": "{{body}}"})

    def close(self) -> None:
        self.server.shutdown()


class HostileProxy:
    """A real HTTP proxy in front of the emulator that answers as a hostile or broken server.

    Rules apply to requests whose path matches the regular expression ``path`` (and method,
    if given), ``count`` times each:

    - ``echo_error``: 400 whose ``type``, ``code``, ``detail`` and ``attr`` all carry the
      request's bearer token, its body and every secret value seen so far;
    - ``cut_text``: 502 text body that the server cut 16 characters into a secret;
    - ``drop_field``: forward, then remove ``field`` from the JSON answer (the write happened);
    - ``echo_ok``: forward, then add every secret seen so far to the JSON answer;
    - ``add_headers``: forward, then add ``headers(path)`` to the answer's headers.
    """

    def __init__(self, target: str) -> None:
        import httpx

        self.target = target
        self.rules: list[dict[str, Any]] = []
        self.seen: list[str] = []  # every secret the proxy has carried, to throw back
        self.applied: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0) or 0))
                auth = self.headers.get("authorization", "")
                token = auth[7:] if auth.lower().startswith("bearer ") else ""
                proxy._remember(token, body.decode("utf-8", "replace"))
                rule = proxy._rule(self.command, self.path)
                if rule and rule["mode"] == "echo_error":
                    echo = " ".join([token, body.decode("utf-8", "replace"), *proxy.seen])
                    self._send(400, json.dumps({"type": echo, "code": echo,
                                                "detail": "rejected " + echo, "attr": echo}))
                    return
                if rule and rule["mode"] == "cut_text":
                    # A body cut by the server itself, 16 characters into a secret.
                    secret = (proxy.seen or [token])[-1]
                    self._send(502, "<html>upstream error " + "x" * 100 + secret[:16],
                               "text/html")
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length")}
                upstream = httpx.request(self.command, proxy.target + self.path, content=body,
                                         headers=headers, timeout=30)
                text = upstream.text
                if upstream.headers.get("content-type", "").startswith("application/json") \
                        and text:
                    data = upstream.json()
                    proxy._remember_answer(data)
                    if rule and rule["mode"] == "drop_field" and isinstance(data, dict):
                        data.pop(rule["field"], None)
                    if rule and rule["mode"] == "echo_ok" and isinstance(data, dict):
                        data["echo"] = list(proxy.seen)
                    text = json.dumps(data)
                extra = rule["headers"](self.path.split("?")[0]) if rule and rule[
                    "mode"] == "add_headers" else {}
                self._send(upstream.status_code, text, headers=extra)

            def _send(self, status: int, text: str, kind: str = "application/json",
                      headers: dict[str, str] | None = None) -> None:
                payload = text.encode()
                self.send_response(status)
                self.send_header("content-type", kind)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _remember(self, token: str, body: str) -> None:
        if token and token not in self.seen:
            self.seen.append(token)
        try:
            raw = json.loads(body).get("raw_password") if body else None
        except (ValueError, AttributeError):
            raw = None
        if raw and raw not in self.seen:
            self.seen.append(raw)

    def _remember_answer(self, data: Any) -> None:
        for name in ("value", "password"):
            value = data.get(name) if isinstance(data, dict) else None
            if isinstance(value, str) and value not in self.seen:
                self.seen.append(value)

    def _rule(self, method: str, path: str) -> dict[str, Any] | None:
        for rule in self.rules:
            if rule["count"] > 0 and re.search(rule["path"], path) and rule.get(
                    "method", method) == method:
                rule["count"] -= 1
                self.applied.append(f"{rule['mode']} {method} {path.split('?')[0]}")
                return rule
        return None

    def add(self, mode: str, path: str, *, method: str | None = None, count: int = 1,
            field: str | None = None,
            headers: Callable[[str], dict[str, str]] | None = None) -> None:
        rule: dict[str, Any] = {"mode": mode, "path": path, "count": count, "field": field,
                                "headers": headers}
        if method:
            rule["method"] = method
        self.rules.append(rule)

    def close(self) -> None:
        self.server.shutdown()


# -- leak scanning --------------------------------------------------------------------------

async def prefect_records() -> str:
    """Everything the Prefect API keeps of the runs: flow and task runs (parameters,
    states), logs, artifacts, and every event this package emitted."""
    async with get_client() as client:
        runs = await client.read_flow_runs()
        tasks = await client.read_task_runs()
        logs = await client.read_logs()
        artifacts = await client.read_artifacts()
    parts = [r.model_dump_json() for r in [*runs, *tasks, *logs, *artifacts]]
    return "\n".join(parts) + "\n" + await posthog_events()


async def posthog_events() -> str:
    """Every event this package emitted (read back from the events API, all pages)."""
    found: list = []
    async with get_client() as client:
        page = (await client._client.post("/events/filter", json={
            "filter": {"event": {"prefix": ["posthog."]}}, "limit": 50})).json()
        found += page["events"]
        while page.get("next_page"):
            page = (await client._client.get(page["next_page"])).json()
            found += page["events"]
    return json.dumps(found)


def emitted(check: Callable[[list[dict]], bool], timeout: float = 60,
            since: str | None = None) -> list[dict]:
    """This package's events (those occurred at or after the ISO time `since`, if given)
    once `check` holds for them (the server persists events a moment after they are sent);
    the last read if it never does."""
    import asyncio
    import time
    from datetime import datetime

    after = datetime.fromisoformat(since) if since else None
    deadline = time.monotonic() + timeout
    while True:
        events = [e for e in json.loads(asyncio.run(posthog_events()))
                  if after is None or datetime.fromisoformat(e["occurred"]) >= after]
        if check(events) or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def until(condition: Callable[[], Any], seconds: float = 120) -> Any:
    """Poll `condition` until it holds (returning its value) or `seconds` passed (returning
    its last value): waits with a generous bound, never a timed assertion."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.05)
    return condition()


def leak_channels(storage: Path, notifications: list[dict], captured: str, log_text: str,
                  expected_events: set[str], since: str, timeout: float = 60
                  ) -> dict[str, str]:
    """Every place a secret could reach, by name, once the server holds the events named:
    the Prefect API (parameters, states, logs, artifacts, events), persisted results,
    notification payloads, captured output and log records. Every channel but captured
    output (pytest may route Prefect's console logs into the log records) must hold
    something, or the search proves nothing; the events named must have occurred since
    `since` (the test's start)."""
    import asyncio

    found = emitted(lambda events: expected_events <= {e["event"] for e in events}, timeout,
                    since)
    assert expected_events <= {e["event"] for e in found}, {e["event"] for e in found}
    channels = {
        "prefect api (parameters, states, logs, artifacts, events)":
            asyncio.run(prefect_records()),
        "persisted results": storage_text(storage) if storage.exists() else "",
        "notifications": json.dumps(notifications),
        "stdout/stderr": captured,
        "log records": log_text,
    }
    empty = [k for k, v in channels.items() if not v and k != "stdout/stderr"]
    assert not empty, empty
    return channels


def storage_text(root: Path) -> str:
    """Every persisted result file under ``root``, with base64 blobs decoded."""
    chunks = []
    for path in root.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            chunks.append(raw.decode("latin1"))
            for blob in re.findall(rb"[A-Za-z0-9+/=]{40,}", raw):
                with contextlib.suppress(ValueError):
                    chunks.append(base64.b64decode(blob + b"===").decode("latin1"))
    return "\n".join(chunks)


def last_artifact_rows(key: str) -> list[dict]:
    """The rows of the newest table artifact with this key, as the Prefect API holds them."""

    async def read() -> list[dict]:
        async with get_client() as client:
            artifacts = await client.read_latest_artifacts()
        data = next(a for a in artifacts if a.key == key).data
        return json.loads(data) if isinstance(data, str) else data

    return asyncio.run(read())
