"""A weight source serving the real model over real HTTP, and servers fetching their span from it.

The source runs in a thread of this process (and, for the CLI, as an ``efedllm weights serve`` process); a small
proxy between the two alters or cuts bytes in flight to show that a span which did not arrive whole is refused.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import torch
from aiohttp import ClientSession, web
from transformers import AutoTokenizer

from efedllm.chain.anvil import free_port
from efedllm.compression import svd
from efedllm.compression.sizes import k_for_ratio
from efedllm.errors import EfedError
from efedllm.localnet import EfedllmProcess, ServerProcess
from efedllm.model.head import ModelEnds
from efedllm.model.source import DEFAULT_MODEL, resolve
from efedllm.model.span import LayerSpan
from efedllm.model.weights import read_tensors
from efedllm.server.config import ServerConfig
from efedllm.server.main import load
from efedllm.weights import fetch_span
from efedllm.weights.app import create_app
from efedllm.weights.source import WeightSource
from tests.support.serving import ServedApp

CPU = torch.device("cpu")
FIRST, COUNT = 28, 2  # a small span keeps the transfers short


class Tamper:
    """A proxy to the weight source that passes everything through, except what ``mode`` says to break."""

    def __init__(self, upstream: str):
        self.upstream, self.mode, self.target, self.paths = upstream, None, None, []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self.forward)
        return app

    async def forward(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.path)
        async with ClientSession() as http, http.get(self.upstream + request.path_qs) as upstream:
            body = await upstream.read()
            status = upstream.status
        hit = self.target is not None and request.path.endswith("/" + self.target)
        if self.mode == "manifest" and request.path == "/manifest":
            manifest = json.loads(body)
            manifest["tensors"][0]["sha256"] = "0" * 64
            body = json.dumps(manifest).encode()
        elif hit and self.mode == "flip":
            body = body[:-100] + bytes([body[-100] ^ 0x40]) + body[-99:]
        elif hit and self.mode == "short":
            body = body[: len(body) // 2]
        elif hit and self.mode == "cut":
            response = web.StreamResponse(headers={"Content-Length": str(len(body))})
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            request.transport.close()
            return response
        return web.Response(body=body, status=status, content_type="application/octet-stream")


@pytest.fixture(scope="module")
def model():
    return resolve()


@pytest.fixture(scope="module")
def source(model):
    with ServedApp(create_app(WeightSource(model.folder, name=model.name))) as served:
        yield served.url


@pytest.fixture(scope="module")
def proxy(source):
    tamper = Tamper(source)
    with ServedApp(tamper.app()) as served:
        tamper.url = served.url
        yield tamper


@pytest.fixture(autouse=True)
def honest(proxy):
    proxy.mode, proxy.target = None, None
    proxy.paths.clear()


def local(model, names):
    return read_tensors(model.folder, names, device=CPU, dtype=torch.float32)


def test_manifest_lists_every_tensor_of_the_span_with_checksums(source, model):
    manifest = requests.get(f"{source}/manifest", params={"first": FIRST, "count": COUNT}, timeout=60).json()
    names = [e["name"] for e in manifest["tensors"]]
    assert len(names) == 9 * COUNT and all(n.startswith(("model.layers.28.", "model.layers.29.")) for n in names)
    assert manifest["bytes"] == sum(e["bytes"] for e in manifest["tensors"])
    assert manifest["config"]["num_hidden_layers"] == 30 and manifest["model"] == model.name
    entry = next(e for e in manifest["tensors"] if e["name"].endswith("29.self_attn.k_proj.weight"))
    blob = requests.get(f"{source}/tensors/{entry['name']}", timeout=60).content
    assert len(blob) == entry["bytes"] and entry["codec"] == "raw" and entry["shape"] == [192, 576]
    assert hashlib.sha256(blob).hexdigest() == entry["sha256"]


@pytest.mark.parametrize(
    "path,params,status,text",
    [
        ("/manifest", {"first": 29, "count": 5}, 400, "outside the model's 0:30"),
        ("/manifest", {"first": "-1"}, 400, "non-negative integer"),
        ("/manifest", {"first": "1e9"}, 400, "non-negative integer"),
        ("/manifest", {"codec": "zip"}, 400, "codec must be one of"),
        ("/manifest", {"codec": "svd"}, 400, "exactly one of energy or ratio"),
        ("/manifest", {"codec": "svd", "energy": "1.5"}, 400, "energy must be in (0, 1]"),
        ("/manifest", {"codec": "svd", "ratio": "abc"}, 400, "ratio must be a number"),
        ("/manifest", {"codec": "raw", "ratio": "0.5"}, 400, "only to the svd codec"),
        ("/tensors/model.embed_tokens.weight", {}, 404, "no tensor"),
        ("/tensors/..%2F..%2Fetc%2Fpasswd", {}, 404, "no tensor"),
        ("/nothing", {}, 404, "Not Found"),
    ],
)
def test_bad_requests_get_json_4xx(source, path, params, status, text):
    response = requests.get(source + path, params=params, timeout=30)
    assert response.status_code == status, response.text
    assert text in response.json()["error"]


def test_lossless_fetch_is_bitwise_identical_and_loads_as_a_span(proxy, model, tmp_path):
    fetched = fetch_span(proxy.url, first=FIRST, count=COUNT, cache=tmp_path, bar=False, progress=lambda m: None)
    assert not fetched.from_cache and fetched.report["codec"] == "raw"
    names = [t["name"] for t in fetched.report["tensors"]]
    got = read_tensors(fetched.folder, names, device=CPU, dtype=torch.float32)
    expected = local(model, names)
    assert all(torch.equal(got[n], expected[n]) for n in names)
    remote = LayerSpan(fetched.folder, FIRST, COUNT, device=CPU)
    mine = LayerSpan(model.folder, FIRST, COUNT, device=CPU)
    x = torch.randn(1, 7, 576, generator=torch.Generator().manual_seed(0)) * 0.1
    assert torch.equal(remote(x, remote.new_cache(), past=0), mine(x, mine.new_cache(), past=0))


def test_a_restart_reuses_the_verified_folder_and_refetches_a_damaged_one(proxy, tmp_path):
    first = fetch_span(proxy.url, first=FIRST, count=COUNT, cache=tmp_path, bar=False, progress=lambda m: None)
    proxy.paths.clear()
    again = fetch_span(proxy.url, first=FIRST, count=COUNT, cache=tmp_path, bar=False, progress=lambda m: None)
    assert again.from_cache and again.folder == first.folder and proxy.paths == ["/manifest"]
    layer_file = next(first.folder.glob("*.safetensors"))
    data = bytearray(layer_file.read_bytes())
    data[-1] ^= 0xFF
    layer_file.write_bytes(bytes(data))
    repaired = fetch_span(proxy.url, first=FIRST, count=COUNT, cache=tmp_path, bar=False, progress=lambda m: None)
    assert not repaired.from_cache and any(p.startswith("/tensors/") for p in proxy.paths)


def test_servers_fetching_the_same_span_together_download_it_once(proxy, tmp_path):
    fetch = lambda _: fetch_span(  # noqa: E731
        proxy.url,
        first=FIRST,
        count=COUNT,
        cache=tmp_path,
        bar=False,
        progress=lambda m: None,
    )
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(fetch, range(2)))
    assert sorted(r.from_cache for r in results) == [False, True]
    assert results[0].folder == results[1].folder
    assert sum(p.startswith("/tensors/") for p in proxy.paths) == 9 * COUNT


def test_svd_transfer_reports_k_and_energy_and_reconstructs(source, model, tmp_path):
    fetched = fetch_span(
        source, first=29, count=1, codec="svd", ratio=0.5, cache=tmp_path, bar=False, progress=lambda m: None
    )
    report = fetched.report
    assert report["codec"] == "svd ratio=0.5" and report["bytes"] < 0.55 * report["raw_float32_bytes"]
    matrices = [t for t in report["tensors"] if len(t["shape"]) == 2]
    assert len(matrices) == 7 and all(t["codec"] == "svd" for t in matrices)
    for t in matrices:
        assert t["k"] == k_for_ratio(*t["shape"], 0.5) and 0 < t["energy"] < 1
    name = "model.layers.29.mlp.up_proj.weight"
    got = read_tensors(fetched.folder, [name], device=CPU, dtype=torch.float32)[name]
    expected = svd.truncate(local(model, [name])[name], ratio=0.5).reconstruct()
    assert torch.allclose(got, expected, atol=1e-5)
    assert any("7 of 7 matrices factored" in line for line in fetched.summary())
    LayerSpan(fetched.folder, 29, 1, device=CPU)  # loads unchanged


@pytest.mark.parametrize(
    "mode,message",
    [
        ("flip", r"tensor model\.layers\.28\.mlp\.down_proj\.weight: sha256 mismatch"),
        ("short", r"tensor model\.layers\.28\.mlp\.down_proj\.weight: received \d+ of \d+ bytes \(truncated"),
        ("cut", r"tensor model\.layers\.28\.mlp\.down_proj\.weight: transfer broke off"),
    ],
)
def test_a_corrupted_or_truncated_transfer_is_refused_and_nothing_is_kept(proxy, tmp_path, mode, message):
    proxy.mode, proxy.target = mode, "model.layers.28.mlp.down_proj.weight"
    with pytest.raises(EfedError, match=message):
        fetch_span(proxy.url, first=FIRST, count=COUNT, cache=tmp_path, bar=False, progress=lambda m: None)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_an_altered_manifest_is_refused(proxy, tmp_path):
    proxy.mode = "manifest"
    with pytest.raises(EfedError, match="manifest: sha256 mismatch"):
        fetch_span(proxy.url, first=FIRST, count=COUNT, cache=tmp_path, bar=False, progress=lambda m: None)


def test_a_source_of_another_model_is_refused(source, tmp_path):
    with pytest.raises(EfedError, match="serves 'smollm2-135m-instruct', not 'other-model'"):
        fetch_span(
            source, first=FIRST, count=1, model="other-model", cache=tmp_path, bar=False, progress=lambda m: None
        )


def greedy(ends: ModelEnds, spans: list[LayerSpan], ids: torch.Tensor, n: int) -> tuple[list[int], torch.Tensor]:
    caches, past, tokens, step, first_hidden = [s.new_cache() for s in spans], 0, [], ids, None
    for _ in range(n):
        hidden = ends.embed_tokens(step)
        for span, cache in zip(spans, caches):
            hidden = span(hidden, cache, past=past)
        first_hidden = hidden if first_hidden is None else first_hidden
        past += step.shape[1]
        tokens.append(int(ends.logits(hidden[:, -1:])[0, -1].argmax()))
        step = torch.tensor([[tokens[-1]]])
    return tokens, first_hidden


def test_a_server_loading_through_the_source_computes_the_same_tokens(proxy, model, tmp_path, monkeypatch):
    monkeypatch.setenv("EFEDLLM_CACHE", str(tmp_path))  # fetched spans go here, not to the user's cache
    config = ServerConfig(model=DEFAULT_MODEL, first_layer=10, num_layers=10, weights_from=proxy.url)
    fetched_span, _ = load(config, progress=lambda m: None)
    assert len([p for p in (tmp_path / "spans").iterdir() if p.is_dir()]) == 1  # fetched into EFEDLLM_CACHE
    ends = ModelEnds(model.folder, device=CPU)
    head, tail, middle = (LayerSpan(model.folder, f, 10, device=CPU) for f in (0, 20, 10))
    ids = AutoTokenizer.from_pretrained(model.folder)("The capital of France is", return_tensors="pt")["input_ids"]
    expected, expected_hidden = greedy(ends, [head, middle, tail], ids, 12)
    tokens, hidden = greedy(ends, [head, fetched_span, tail], ids, 12)
    assert tokens == expected and torch.equal(hidden, expected_hidden)

    proxy.mode, proxy.target = "flip", "model.layers.15.self_attn.q_proj.weight"
    monkeypatch.setenv("EFEDLLM_CACHE", str(tmp_path / "fresh"))
    with pytest.raises(EfedError, match=r"model\.layers\.15\.self_attn\.q_proj\.weight: sha256 mismatch"):
        load(config, progress=lambda m: None)


class WeightsProcess(EfedllmProcess):
    def __init__(self, port: int, **kwargs):
        super().__init__(["weights", "serve", "--port", str(port)], **kwargs)
        self.url = f"http://127.0.0.1:{port}"

    def ready(self) -> bool:
        try:
            return requests.get(self.url + "/info", timeout=1).ok
        except requests.RequestException:
            return False


def test_server_processes_fed_by_a_weights_serve_process_answer_like_local_ones(tmp_path):
    from efedllm.client import DistributedModel

    weights = WeightsProcess(free_port(), log_path=tmp_path / "weights.log").start().wait_ready(120)
    servers = [
        ServerProcess("0:30", free_port(), ["--no-chain"], log_path=tmp_path / "local.log"),
        ServerProcess(
            "0:30",
            free_port(),
            ["--no-chain", "--weights-from", weights.url],
            env={"EFEDLLM_CACHE": str(tmp_path / "cache")},
            log_path=tmp_path / "remote.log",
        ),
    ]
    try:
        for server in servers:
            server.start().wait_ready(240)
        assert "checksums verified" in (tmp_path / "remote.log").read_text()
        answers = []
        for server in servers:
            client = DistributedModel.from_pretrained(servers=[server.url])
            answers.append(client.generate(prompt="What is the capital of France?", max_new_tokens=12)[0].tolist())
        assert answers[0] == answers[1]
    finally:
        for process in (*servers, weights):
            process.stop()
