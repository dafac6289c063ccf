"""The client: runs the embeddings and LM head locally and sends hidden states through a route of servers
that together cover every layer (prompt -> client -> servers -> client)."""

from efedllm.client.model import DistributedModel

__all__ = ["DistributedModel"]
