"""The fuzzed server's setup (conftest.py builds it; the tests check answers against it): its model, limits,
address, chain and committed epoch, and the verifier allowed to open its tasks. (A module of its own, not
conftest.py: test modules import it by a name no other suite's conftest shares.)"""

from eth_account import Account

from efedllm.server.config import ServerLimits
from tests.support.tiny_model import HIDDEN, LAYERS

__all__ = ["CHAIN_ID", "COMMITTED_EPOCH", "HIDDEN", "LAYERS", "LIMITS", "SERVER", "VERIFIER"]

CHAIN_ID = 31337
SERVER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
COMMITTED_EPOCH = 3
VERIFIER = Account.from_key(b"\x09" * 32)
LIMITS = ServerLimits(
    max_sessions=4,
    max_sequence=64,
    max_step_tokens=16,
    max_body_bytes=256 * 1024,
    max_cache_bytes=3 * 64 * 2 * LAYERS * 2 * 16 * 4,
    session_ttl=300,
    body_timeout=1.0,
)
