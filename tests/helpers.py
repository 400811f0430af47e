"""Test helpers: a real local webhook receiver and leak scanning."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prefect.blocks.notifications import CustomWebhookNotificationBlock


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
