"""A recording relay in front of a server: what the server sees of each request, kept for a test to compare.

The server announces the relay's URL on chain (``--public-url``), so clients and verifiers find the relay and talk
to the server through it; the relay passes every request on unchanged and keeps its method, path, headers and
(for JSON bodies) body, as a server that profiled its callers would.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class Recorder:
    """Relays a port of its own on 127.0.0.1 (``url``) to ``upstream`` (host, port: set it before the first
    request) and records every request."""

    def __init__(self):
        self.upstream: tuple[str, int] | None = None
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        recorder = self

        class Relay(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the server itself offers

            def _relay(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with recorder._lock:
                    recorder.requests.append(Request(self.command, self.path, tuple(self.headers.items()), body))
                upstream = http.client.HTTPConnection(*recorder.upstream, timeout=120)
                try:
                    upstream.request(self.command, self.path, body=body or None, headers=dict(self.headers))
                    answer = upstream.getresponse()
                    content = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = _relay

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self) -> list[Request]:
        """The requests recorded since the last ``take``."""
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
