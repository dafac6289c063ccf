"""The local Anvil chain under its first names: ``Anvil`` and ``AnvilConfig`` are a ``LocalNode`` and its
``NodeConfig`` (node.py), whose kind defaults to Anvil; kept so that code and tests written for Anvil read as before.
"""

from __future__ import annotations

from efedllm.chain.node import ANVIL_CHAIN_ID, DEFAULT_PORT, free_port, warp_to
from efedllm.chain.node import LocalNode as Anvil
from efedllm.chain.node import NodeConfig as AnvilConfig


def anvil_binary():
    """The ``anvil`` of the project's node_modules, else one on PATH."""
    from efedllm.chain.node import node_binary

    return node_binary("anvil")


__all__ = ["ANVIL_CHAIN_ID", "DEFAULT_PORT", "Anvil", "AnvilConfig", "anvil_binary", "free_port", "warp_to"]
