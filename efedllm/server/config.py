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

    @property
    def endpoint(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"
