"""Server configuration: what it serves and the limits that keep it alive under load or abuse."""

from __future__ import annotations

from dataclasses import dataclass, field

from efedllm import DATA_DIR
from efedllm.chain.views import Serving
from efedllm.compression.choices import CODECS

COMPUTE_DTYPES = ("float32", "bfloat16", "float16")
"""What ``--dtype`` takes: IServerRegistry.ComputeDtype, by torch's names."""


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    max_sessions: int = 64
    """Inference sessions open at once; more get HTTP 429."""
    max_sessions_per_client: int = 32
    """Sessions one client (one peer address) may hold at once; more get HTTP 429, so that no client can take
    every slot and lock the others out for the idle timeout."""
    max_sequence: int = 2048
    """Tokens one session may hold, prompt and generated; more get HTTP 413."""
    max_step_tokens: int = 1024
    """Tokens in one forward step."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body accepted, in bytes."""
    max_cache_bytes: int = 1024 * 1024 * 1024
    """KV-cache memory of all sessions together, in bytes; a step beyond it gets HTTP 507."""
    session_ttl: float = 300.0
    """Seconds a session may stay idle before it is dropped."""
    max_batch: int = 32
    """Most decode steps of different sessions run as one forward pass (continuous batching)."""
    batch_wait_ms: float = 30.0
    """Longest a batch waits for the decode steps of other sessions that are stepping now (server/batching.py);
    0: run whatever is queued at once. A session alone never waits."""
    batch_gap_ms: float = 5.0
    """Longest pause between arriving steps that a waiting batch sits through (the steps of different clients
    reach the server a few milliseconds apart; one client's come in one request, POST /steps)."""
    batch_tokens: int = 128
    """Most tokens of all steps together in one batched forward pass (a step longer than this runs alone). A pass
    holds every token's activations at once: 16 prompts of 35 tokens in one pass grew a server's memory by 45 MiB;
    at 128 tokens a pass holds about a quarter of that, and passes of 128 rows already keep the cores busy
    (server/batching.py has the figures)."""
    one_thread_tokens: int = 16
    """A forward pass of at most this many tokens in all (a decode step, a batch of up to this many) runs on one
    CPU thread (server/batching.py says why); 0: every pass uses all of torch's threads. No effect on a GPU."""
    body_timeout: float = 30.0
    """Seconds a request's body may take to arrive after its headers; a stalled body gets HTTP 408."""
    step_timeout: float = 120.0
    """Seconds one forward step may take."""


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    model: str
    first_layer: int
    num_layers: int
    host: str = "127.0.0.1"
    """Interface to listen on."""
    port: int = 8000
    """Port to listen on."""
    public_url: str | None = field(default=None, metadata={"default_help": "http://HOST:PORT"})
    """Endpoint announced on chain."""
    device: str | None = field(default=None, metadata={"default_help": "cuda when present, else cpu"})
    """Torch device."""
    dtype: str = field(default="float32", metadata={"choices": COMPUTE_DTYPES})
    """The precision to compute in, declared on chain (IServerRegistry.declareServing): verifiers recompute opened
    steps in it and hold them to its bounds (efedllm/verifier/rules.py; docs/GPU_PROVIDERS.md)."""
    quantize: str | None = field(default=None, metadata={"choices": ("int8",), "default_help": "none: full weights"})
    """Serve int8 weight-only (one float32 scale per output channel, efedllm/model/quantize.py), declared on
    chain; verifiers rebuild the same int8 weights from the same float weights."""
    data_dir: str = DATA_DIR
    """Where task records (tasks-<address>.sqlite) are kept; keep it across restarts."""
    limits: ServerLimits = ServerLimits()
    rebalance: bool = False
    """Move to layers nobody serves when this server's layers are also served by others (after a deactivation).

    ``max_layers`` bounds how many it takes on."""
    max_layers: int | None = field(default=None, metadata={"default_help": "as many as it serves now"})
    """Most layers to take on when rebalancing."""
    auto_claim: bool = False
    """Claim pool rewards as epochs settle and withdraw the client fees redeemed."""
    price: int = 0
    """Wei per token and layer a client pays (announced on chain, Payments); 0 serves for free. A paid step needs
    the client's signed cumulative receipt (efedllm/receipts.py), redeemed once the epoch's work period ends."""
    weights_from: str | None = field(default=None, metadata={"metavar": "URL", "default_help": "the local model"})
    """Fetch this span's weights from a weight source (``efedllm weights serve``), every checksum verified, instead
    of loading the local model."""
    weights_codec: str = field(default="raw", metadata={"choices": CODECS})
    """How the weights travel: raw float32 (lossless), float16, bfloat16 or svd factors."""
    weights_energy: float | None = field(
        default=None, metadata={"metavar": "E", "default_help": "none; give this or --weights-ratio"}
    )
    """svd: keep this share of each matrix's energy, eq. 12."""
    weights_ratio: float | None = field(default=None, metadata={"metavar": "R"})
    """svd: factor each matrix to this share of its size, eq. 15; exactly one of energy and ratio."""

    @property
    def serving(self) -> Serving:
        """What this server declares on chain and loads its span as."""
        return Serving.named(dtype=self.dtype, quantize=self.quantize)

    @property
    def endpoint(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"
