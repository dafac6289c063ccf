"""A server records each served step off its event loop (issue 16): while a slow record is written, the server
still answers other requests at once, and steps are recorded in the order they were served.

The server's own app (server/app.py) over one real layer, served by aiohttp's test server, with a recording hook
that takes 0.6 s per step (a slow disk). Before this change the hook ran on the event loop and ``/info`` waited
for it."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import torch
from aiohttp.test_utils import TestClient, TestServer

from efedllm import wire
from efedllm.rpc import routes
from efedllm.rpc.messages import Throughput
from efedllm.server.app import HOOKS, create_app
from efedllm.server.config import ServerConfig
from efedllm.server.main import load_span

SLOW_S = 0.6


@pytest.fixture(scope="module")
def span():
    config = ServerConfig(model="smollm2-135m-instruct", first_layer=0, num_layers=1, device="cpu")
    return load_span(config, 0, 1, progress=lambda *a: None)


def test_a_slow_record_does_not_hold_the_event_loop(span):
    recorded: list[tuple[str, int, str]] = []

    def slow_record(*, session, inputs, outputs, past, payment):
        time.sleep(SLOW_S)
        recorded.append((session.id, past, threading.current_thread().name))

    async def scenario():
        config = ServerConfig(model="smollm2-135m-instruct", first_layer=0, num_layers=1)
        app = create_app(span, config, throughput=Throughput(decode_tokens_per_s=1.0, prefill_tokens_per_s=1.0))
        app[HOOKS].append(slow_record)
        async with TestClient(TestServer(app)) as client:
            sid = (await (await client.post(routes.SESSIONS, json={})).json())["session"]

            async def step(tokens: int):
                body = wire.encode(torch.randn(1, tokens, 576))
                answer = await client.post(routes.forward(sid), data=body, headers={"Content-Type": wire.CONTENT_TYPE})
                assert answer.status == 200, await answer.text()

            served = asyncio.ensure_future(step(3))
            await asyncio.sleep(0.2)  # the step is computed by now, and its record is being written
            began = time.monotonic()
            info = await client.get(routes.INFO)
            info_s = time.monotonic() - began
            assert info.status == 200
            assert not served.done()  # the answer waits for its record: nothing is sent unrecorded
            await served
            await step(1)
            return sid, info_s

    sid, info_s = asyncio.run(scenario())
    assert info_s < SLOW_S / 2, f"/info waited {info_s:.2f} s behind a record"
    assert [(s, past) for s, past, _ in recorded] == [(sid, 0), (sid, 3)]  # in the order served
    assert all(name.startswith("efedllm-record") for _, _, name in recorded)
