"""What aiohttp's HTTP parser refuses, before any handler runs, still gets a JSON 4xx, at once, logged as no error
(issue 16): over-long request lines and headers, bad chunking, malformed methods and Content-Lengths, a declared
body over the limit, a body whose Content-Encoding does not decode, and a client that drops its connection.

Raw bytes over a socket to the real server app and the real OpenAI-compatible API app (served with the services'
own runner, efedllm/http.py ``AppRunner``), since an HTTP client library would refuse to send most of these.
"""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest

from efedllm.api.app import create_app as create_api
from efedllm.api.config import ApiConfig
from tests.support.serving import ServedApp

CASES = {
    "request line too long": b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "header too long": b"GET /info HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
    "bad chunking": b"POST /sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    "malformed method": b"G(T /info HTTP/1.1\r\nHost: x\r\n\r\n",
    "not HTTP at all": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",
    "Content-Length not a number": b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "negative Content-Length": b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    "two Content-Lengths": b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "bad gzip": b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
    b"Content-Length: 10\r\n\r\nnot gzip!!",
    "unknown method": b"BREW /info HTTP/1.1\r\nHost: x\r\n\r\n",
}


class NoEngine:
    """The API app's engine is never reached by these requests: the parser or the router refuses them first."""

    tokenizer = None


@pytest.fixture(scope="module")
def services(served_server):
    with ServedApp(create_api(NoEngine(), ApiConfig(), name="m")) as api:
        yield {"server": served_server, "api": api}


def exchange(port: int, raw: bytes, *, timeout: float = 10) -> tuple[int, dict, float]:
    """(status, JSON body, seconds to the answer) of ``raw`` sent as is."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    assert b"application/json" in head.lower(), head
    return status, json.loads(body[: _length(data)] or b"null"), time.monotonic() - started


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


@pytest.mark.parametrize("service", ["server", "api"])
@pytest.mark.parametrize("case", list(CASES))
def test_parser_errors_are_json_4xx_and_no_logged_error(services, service, case, caplog):
    caplog.set_level(logging.DEBUG)
    status, body, _ = exchange(services[service].port, CASES[case])
    assert 400 <= status < 500, (case, status, body)
    assert isinstance(body, dict) and body.get("error"), body
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@pytest.mark.parametrize("service", ["server", "api"])
def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(services, service):
    raw = b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n"
    if service == "api":
        raw = raw.replace(b"/sessions", b"/v1/chat/completions")
    status, body, seconds = exchange(services[service].port, raw)
    assert status == 413 and body["error"] and seconds < 5


def test_a_dropped_connection_is_no_error_and_the_server_serves_on(services, caplog):
    caplog.set_level(logging.DEBUG)
    port = services["server"].port
    with socket.create_connection(("127.0.0.1", port)) as s:  # half a body, then gone
        s.sendall(
            b"POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
    time.sleep(0.5)
    status, body, _ = exchange(port, b"GET /info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200 and body["num_layers"] > 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_stalled_body_times_out_with_408(services, caplog):
    """Headers, then 10 of 100 promised bytes, then nothing: 408 after the server's body_timeout (1 s here)."""
    caplog.set_level(logging.DEBUG)
    raw = (
        b'POST /sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"start": '
    )
    status, body, seconds = exchange(services["server"].port, raw)
    assert status == 408 and "did not arrive" in body["error"] and 0.9 < seconds < 5
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
