"""eFedLLM: blockchain-backed collaborative LLM inference.

Data flows prompt -> client -> servers -> client (``client/``, ``server/``, ``model/``), and
server work -> commitment -> verifier -> contract -> rewards (``server/``, ``verifier/``, ``chain/``).
"""

__version__ = "0.1.0"

DATA_DIR = "efedllm-data"
"""Where a server keeps its task records and a verifier its commit/reveal state unless told otherwise (relative to
the working directory; both must survive restarts)."""
