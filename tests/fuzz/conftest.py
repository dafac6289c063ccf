"""Fixtures of the fuzz tests: a tiny random Llama model on disk, and the project's real aiohttp apps over it.

The apps are the real ones (``create_app`` of the server, the weight source and the dashboard, the real
``POST /openings`` handler over a real SQLite task store); only the model is a tiny random Llama (6 layers,
hidden size 64) where the handlers' logic is what is fuzzed, so that thousands of requests run in a minute.
``test_real_server.py`` runs a smoke pass of the same strategies against a real ``efedllm server run`` process
on the real model.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from harness import Served  # this folder's (pytest puts a conftest's folder on sys.path)
from hypothesis import HealthCheck, settings
from server_setup import CHAIN_ID, COMMITTED_EPOCH, HIDDEN, LAYERS, LIMITS, SERVER, VERIFIER

from efedllm import merkle
from efedllm.model.span import LayerSpan
from efedllm.rpc.messages import Throughput
from efedllm.server import openings
from efedllm.server.app import HOOKS, create_app
from efedllm.server.config import ServerConfig
from efedllm.server.records import TaskStore
from efedllm.server.work import recorder
from tests.support.tiny_model import write_tiny_model

# The same examples on every run by default, so that a red run is a regression and CI stays reproducible;
# EFEDLLM_FUZZ_EXPLORE=1 draws fresh random examples (a failure prints the blob to replay it).
settings.register_profile(
    "fuzz",
    deadline=None,
    derandomize=not os.environ.get("EFEDLLM_FUZZ_EXPLORE"),
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.load_profile("fuzz")


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-llama")
    write_tiny_model(folder)
    return folder


@pytest.fixture(scope="session")
def span(tiny_folder) -> LayerSpan:
    return LayerSpan(tiny_folder, 0, LAYERS, device=torch.device("cpu"))


class KnownVerifiers:
    """Stands in for the chain's role lookup (``Protocol.is_verifier``): the real lookup against a real chain is
    tested in tests/python/test_openings.py; here the handler's parsing and checks are what is fuzzed."""

    def __init__(self, *addresses: str):
        self.addresses = {a.lower() for a in addresses}

    def is_verifier(self, address: str) -> bool:
        return address.lower() in self.addresses


@pytest.fixture(scope="module")
def task_store(tmp_path_factory) -> TaskStore:
    """A store with a committed epoch of five steps over two sessions (what an opening can reveal)."""
    store = TaskStore(tmp_path_factory.mktemp("tasks") / "tasks.sqlite", server=SERVER)
    torch.manual_seed(1)
    past = {"s1": 0, "s2": 0}
    for session, n in (("s1", 5), ("s1", 1), ("s2", 3), ("s1", 1), ("s2", 1)):
        x = torch.randn(1, n, HIDDEN)
        store.record(
            epoch=COMMITTED_EPOCH,
            session=session,
            start=0,
            end=LAYERS,
            past=past[session],
            inputs=x,
            outputs=torch.tanh(x),
        )
        past[session] += n
    records, _ = store.tree(COMMITTED_EPOCH)
    store.save_commitment(COMMITTED_EPOCH, merkle.root([r.leaf(SERVER) for r in records]), len(records), None)
    yield store
    store.close()


@pytest.fixture(scope="module")
def served_server(span, task_store):
    """The server app as ``efedllm server run`` builds it on chain: served steps recorded (epoch 4, uncommitted)
    and ``POST /openings`` over the same store."""
    config = ServerConfig(model="tiny-llama", first_layer=0, num_layers=LAYERS, limits=LIMITS)
    app = create_app(
        span, config, address=SERVER, throughput=Throughput(decode_tokens_per_s=1.0, prefill_tokens_per_s=1.0)
    )
    app[HOOKS].append(recorder(task_store, SimpleNamespace(epoch=COMMITTED_EPOCH + 1)))
    roles = openings.VerifierRoles(KnownVerifiers(VERIFIER.address))
    app.router.add_post("/openings", openings.handler(store=task_store, roles=roles, chain_id=CHAIN_ID))
    with Served(app) as served:
        yield served
