"""Serving an aiohttp app to synchronous hypothesis tests, sending it raw HTTP, and judging each answer.

``Served`` runs the app on an event loop of its own in a background thread (tests/support/serving.py), so a
hypothesis test (synchronous) sends it real HTTP over loopback with ``http.client``, which leaves paths and
bodies exactly as drawn: no client-side normalisation hides a path trick from the server.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass

from aiohttp import web
from hypothesis import event

from tests.support.serving import ServedApp

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


@dataclass(frozen=True)
class Answer:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes

    def json(self):
        return json.loads(self.body)


class Served(ServedApp):
    """``app`` served on 127.0.0.1 from a loop thread; ``request`` is synchronous. A context manager."""

    def __init__(self, app: web.Application):
        super().__init__(app, timeout=60)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Answer:
        return request("127.0.0.1", self.port, method, path, body, headers)


def request(
    host: str,
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict | None = None,
    timeout: float = 60,
) -> Answer:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Answer(method, path, response.status, response.getheader("Content-Type", ""), response.read())
    finally:
        connection.close()


def assert_well_formed(answer: Answer, *, allowed: set[int] | None = None) -> None:
    """No 5xx (a 5xx is a bug, or for a relay, a dead upstream); an error is JSON with an "error" text."""
    event(f"HTTP {answer.status}")  # shown by pytest --hypothesis-show-statistics
    where = f"{answer.method} {answer.path[:120]} -> {answer.status} {answer.body[:300]!r}"
    assert answer.status < 500 or answer.status in (allowed or set()), where
    if answer.status >= 400 and answer.method != "HEAD":
        assert answer.content_type.startswith("application/json"), where
        body = answer.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], where


@dataclass(frozen=True)
class Remote:
    """A server in another process on this machine, with the same ``request`` as ``Served``."""

    port: int
    host: str = "127.0.0.1"

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Answer:
        return request(self.host, self.port, method, path, body, headers)
