"""What ``efedllm api`` serves and how much at once (torch-free: the command line reads it for its flags)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class ApiConfig:
    host: str = "127.0.0.1"
    """Interface to listen on."""
    port: int = 8080
    """Port to listen on."""
    served_name: str | None = field(default=None, metadata={"metavar": "NAME", "default_help": "the model's name"})
    """The model id clients ask for (``/v1/models``); a request naming another model gets 404."""
    max_concurrent: int = 16
    """Generations running through the network at once; more requests wait their turn (first come, first served)."""
    max_tokens: int = 1024
    """Most tokens one request may ask to generate (``max_tokens``); a larger request gets 400."""
    default_max_tokens: int = 256
    """Tokens generated when a chat request gives no ``max_tokens`` (a legacy completion's default is 16, as
    OpenAI's)."""
    max_body_bytes: int = 1024 * 1024
    """Largest request body accepted, in bytes."""
