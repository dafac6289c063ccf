"""The server protocol's messages (efedllm/rpc): round trips, a clear error naming a missing or mistyped field, and
a client that leaves out a server whose /info is malformed (with a warning) and routes through a good one."""

from __future__ import annotations

import asyncio
import logging
import threading
from contextlib import contextmanager

import pytest
import torch
from aiohttp import web

from efedllm import wire
from efedllm.client.peers import StaticPeers
from efedllm.client.session import InferenceSession
from efedllm.rpc import routes
from efedllm.rpc.messages import ErrorBody, MessageError, OpenSession, ServerInfo, SessionOpened, Throughput

HIDDEN = 8
INFO = ServerInfo(
    throughput=Throughput(decode_tokens_per_s=12.5, prefill_tokens_per_s=300.0),
    endpoint="http://127.0.0.1:1",
    address=None,
    model="m",
    first_layer=0,
    num_layers=4,
    hidden_size=HIDDEN,
    dtype="float32",
    device="cpu",
    max_sequence=2048,
    max_step_tokens=512,
    max_sessions=64,
    sessions=0,
    cache_bytes=0,
)


def test_server_info_round_trip():
    assert ServerInfo.from_json(INFO.to_json()) == INFO
    with_epoch = ServerInfo(**{**INFO.__dict__, "epoch": 7, "address": "0xabc"})
    assert ServerInfo.from_json(with_epoch.to_json()) == with_epoch
    assert "epoch" not in INFO.to_json()  # off chain /info has no epoch, as before
    assert INFO.to_json()["throughput"] == {"decode_tokens_per_s": 12.5, "prefill_tokens_per_s": 300.0}


def test_server_info_ignores_unknown_fields_and_takes_integers_as_numbers():
    body = {**INFO.to_json(), "future": 1, "throughput": {"decode_tokens_per_s": 12, "prefill_tokens_per_s": 3}}
    assert ServerInfo.from_json(body).throughput.decode_tokens_per_s == 12.0


@pytest.mark.parametrize(
    "change, error",
    [
        (lambda b: b.pop("num_layers"), "missing field 'num_layers'"),
        (lambda b: b.pop("throughput"), "missing field 'throughput'"),
        (lambda b: b["throughput"].pop("decode_tokens_per_s"), "missing field 'throughput.decode_tokens_per_s'"),
        (lambda b: b.update(first_layer="0"), "field 'first_layer' must be an integer, got str"),
        (lambda b: b.update(first_layer=True), "field 'first_layer' must be an integer, got bool"),
        (lambda b: b.update(throughput=[1]), "field 'throughput' must be a JSON object"),
        (lambda b: b.update(model=None), "field 'model' must be a string, got NoneType"),
        (lambda b: b.update(epoch="3"), "field 'epoch' must be an integer"),
    ],
)
def test_server_info_names_a_missing_or_wrong_field(change, error):
    body = INFO.to_json()
    change(body)
    with pytest.raises(MessageError, match=error.replace("(", r"\(")):
        ServerInfo.from_json(body)
    with pytest.raises(MessageError, match="must be a JSON object"):
        ServerInfo.from_json([])


def test_session_messages():
    assert OpenSession.from_json({}) == OpenSession()
    assert OpenSession.from_json(OpenSession(start=2, end=5).to_json()) == OpenSession(start=2, end=5)
    assert OpenSession(start=2).to_json() == {"start": 2}
    for bad in ({"start": "0"}, {"start": None}, {"end": 1.0}, {"start": False}):
        with pytest.raises(MessageError, match="start and end must be integers"):
            OpenSession.from_json(bad)
    with pytest.raises(MessageError, match="body must be a JSON object"):
        OpenSession.from_json([1])
    opened = SessionOpened(session="s", start=0, end=3)
    assert SessionOpened.from_json(opened.to_json()) == opened
    with pytest.raises(MessageError, match="missing field 'session'"):
        SessionOpened.from_json({"start": 0, "end": 3})
    assert ErrorBody.from_json({"error": "no", "status": 400}) == ErrorBody(error="no", status=400)


def test_routes():
    assert (routes.session("abc"), routes.forward("abc")) == ("/sessions/abc", "/sessions/abc/forward")


# ------------------------------------------------------------------ a malformed peer is left out


def fake_server(info: dict) -> web.Application:
    """/info as given; sessions that double their input."""

    async def get_info(request):
        return web.json_response(info)

    async def open_session(request):
        body = await request.json()
        return web.json_response({"session": "s1", "start": body["start"], "end": body["end"]}, status=201)

    async def forward(request):
        hidden = wire.decode(await request.read(), hidden_size=HIDDEN, dtype=torch.float32, max_tokens=64)
        return web.Response(body=wire.encode(hidden * 2), content_type=wire.CONTENT_TYPE)

    async def close(request):
        return web.json_response({"closed": True})

    app = web.Application()
    app.router.add_get(routes.INFO, get_info)
    app.router.add_post(routes.SESSIONS, open_session)
    app.router.add_post(routes.FORWARD, forward)
    app.router.add_delete(routes.SESSION, close)
    return app


@contextmanager
def serving(*apps: web.Application):
    """The apps on loopback ports of a background event loop; yields their URLs."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start(app):
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    started = [asyncio.run_coroutine_threadsafe(start(app), loop).result(10) for app in apps]
    try:
        yield [url for _, url in started]
    finally:
        for runner, _ in started:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.mark.parametrize("missing", ["num_layers", "throughput"])
def test_a_peer_with_a_malformed_info_is_left_out_with_a_warning(missing, caplog):
    good = INFO.to_json()
    bad = {k: v for k, v in good.items() if k != missing}
    with (
        serving(fake_server(bad), fake_server(good)) as (bad_url, good_url),
        caplog.at_level(logging.WARNING, logger="efedllm.client"),
    ):
        peers = StaticPeers([bad_url, good_url]).peers()
        assert [p.endpoint for p in peers] == [good_url]
        session = InferenceSession(peers, INFO.num_layers)
        hidden = torch.randn(1, 3, HIDDEN)
        assert torch.equal(session.step(hidden), hidden * 2)
        assert [hop.peer.endpoint for hop in session.route] == [good_url]
        session.close()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(bad_url in m and f"missing field {missing!r}" in m for m in warned), warned
