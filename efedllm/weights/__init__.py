"""Weights over HTTP: a weight source serves each layer span's tensors (``source``, ``app``), and a server
fetches, verifies and reconstructs its span from it into a local folder that LayerSpan loads (``client``).

``fetch_span`` and ``FetchedSpan`` load on first use, so that the command line can read ``weights.config``
without importing torch."""

__all__ = ["FetchedSpan", "fetch_span"]


def __getattr__(name: str):
    if name in __all__:
        from efedllm.weights import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
