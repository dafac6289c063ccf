"""eFedLLM: blockchain-backed collaborative LLM inference.

Data flows prompt -> client -> servers -> client (``client/``, ``server/``, ``model/``), and
server work -> commitment -> verifier -> contract -> rewards (``server/``, ``verifier/``, ``chain/``).
"""

__version__ = "0.1.0"
