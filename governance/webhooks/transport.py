"""One HTTP POST of a webhook: to the checked address, with a timeout, no redirects followed
(``http.client`` never follows them; a 3xx is a failed attempt), and only a short excerpt of
the response kept."""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass

from governance.webhooks.targets import Target

EXCERPT_BYTES = 500
USER_AGENT = "Warden-Webhooks/1"


@dataclass(frozen=True)
class Response:
    """What came back: the status code and at most ``EXCERPT_BYTES`` of the body."""

    status: int
    excerpt: str


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a given address while sending the URL's host in ``Host``."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = target.address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to a given address, verifying the certificate for the URL's host (SNI too)."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(
            target.host, target.port, timeout=timeout, context=ssl.create_default_context()
        )
        self._address = target.address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(target: Target, *, body: bytes, headers: dict[str, str], timeout: float) -> Response:
    """POST ``body`` to ``target``; network errors raise ``OSError`` (or ``HTTPException``)."""
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = _PinnedHTTPSConnection(target, timeout)
    else:
        connection = _PinnedHTTPConnection(target, timeout)
    try:
        connection.request(
            "POST",
            target.path,
            body=body,
            headers={
                **headers,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "Connection": "close",
            },
        )
        answer = connection.getresponse()
        excerpt = answer.read(EXCERPT_BYTES).decode("utf-8", errors="replace")
        return Response(status=answer.status, excerpt=excerpt)
    finally:
        connection.close()
