"""The client: runs the embeddings and LM head locally and sends hidden states through a route of servers
that together cover every layer (prompt -> client -> servers -> client).

``DistributedModel`` loads torch and transformers, so it is imported on first use: the command line reads the
client's torch-free options (``sampling.py``) without them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from efedllm.client.model import DistributedModel

__all__ = ["DistributedModel"]


def __getattr__(name: str):
    if name == "DistributedModel":
        from efedllm.client.model import DistributedModel

        return DistributedModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
