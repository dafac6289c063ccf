"""Server configuration: what it serves and the limits that keep it alive under load or abuse."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    max_sessions: int = 64
    """Open inference sessions at once; more get 429."""
    max_sequence: int = 2048
    """Tokens a session may hold (prompt and generated); more get 413."""
    max_step_tokens: int = 1024
    """Tokens in one forward step."""
    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body accepted."""
    max_cache_bytes: int = 1024 * 1024 * 1024
    """KV-cache memory for all sessions together; a step that would exceed it gets 507."""
    session_ttl: float = 300.0
    """Seconds a session may stay idle before it is dropped."""
    step_timeout: float = 120.0


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    model: str
    first_layer: int
    num_layers: int
    host: str = "127.0.0.1"
    port: int = 8000
    device: str | None = None
    """None: CUDA when present, else CPU."""
    public_url: str | None = None
    """The endpoint registered on chain; defaults to http://host:port."""
    data_dir: str = "efedllm-data"
    """Where the task records (tasks-<address>.sqlite) live; they must survive restarts."""
    limits: ServerLimits = ServerLimits()
    rebalance: bool = False
    """Move to layers that no active server covers (after a deactivation) when this server's own layers stay
    covered by others; ``max_layers`` bounds how many it takes on (default: as many as it serves now)."""
    max_layers: int | None = None
    auto_claim: bool = False
    """Claim rewards as each epoch settles."""
    weights_from: str | None = None
    """URL of a weight source (``efedllm weights serve``) to fetch the span's weights from, instead of a local model."""
    weights_codec: str = "raw"
    """How the weights travel from the source: raw (float32, lossless), float16, bfloat16 or svd."""
    weights_energy: float | None = None
    """svd: keep the top singular values holding this share of each matrix's energy (eq. 12)."""
    weights_ratio: float | None = None
    """svd: factor each matrix to this share of its size (eq. 15); exactly one of energy and ratio."""

    @property
    def endpoint(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"
