"""Fixtures of the webhook tests: the approvals fixtures (seeded policies, alice's high-risk
model and version, CI), a real HTTP receiver on 127.0.0.1, and subscriptions made through
the service by rita (a risk officer)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.accounts.callers import Caller
from core.accounts.models import User
from governance.webhooks import services
from governance.webhooks.models import WebhookSubscription
from tests.approvals.conftest import (  # noqa: F401 - fixtures shared with the approvals tests
    ci,
    model,
    seeded_defaults,
    vera,
    version,
)


@dataclass
class Received:
    """One request the receiver got."""

    method: str
    path: str
    headers: Message
    body: bytes


class Receiver:
    """A real HTTP server in a thread: records every request and answers with the queued
    status codes (then 200). A 3xx answer redirects to ``/redirected``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                receiver.requests.append(Received(self.command, self.path, self.headers, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                reply = b"x" * 2000
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"{receiver.url}/redirected")
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_POST = _answer
            do_GET = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def subscribe(owner: User, url: str, *events: str) -> tuple[WebhookSubscription, str]:
    """A subscription through the service (audited), and its secret."""
    return services.subscription_create(
        caller=Caller(user=owner), url=url, events=list(events), description="test receiver"
    )
