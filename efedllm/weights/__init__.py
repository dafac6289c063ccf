"""Weights over HTTP: a weight source serves each layer span's tensors (``source``, ``app``), and a server
fetches, verifies and reconstructs its span from it into a local folder that LayerSpan loads (``client``)."""

from efedllm.weights.client import FetchedSpan, fetch_span

__all__ = ["FetchedSpan", "fetch_span"]
