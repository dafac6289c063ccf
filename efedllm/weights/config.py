"""What ``efedllm weights serve`` listens on and how it encodes, without torch: the command line generates its
flags from ``SourceConfig`` (cli/flags.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from efedllm.compression.choices import METHODS, RANDOMIZED_ABOVE


@dataclass(frozen=True, kw_only=True)
class SourceConfig:
    host: str = "127.0.0.1"
    """Interface to listen on."""
    port: int = 8100
    """Port to listen on."""
    svd_method: str = field(
        default="auto",
        metadata={
            "choices": METHODS,
            "help": (
                "how SVD factors are computed: full, randomized (torch.svd_lowrank) or auto "
                f"(randomized for matrices whose smaller side exceeds {RANDOMIZED_ABOVE})"
            ),
        },
    )
    cache_mib: int = 1024
    """Memory for encoded tensors kept between requests, in MiB."""

    @property
    def cache_bytes(self) -> int:
        return max(0, self.cache_mib) * 1024 * 1024
