"""Fixtures of the network tests: the shared chain fixtures (tests/support/chain.py).

The client of most tests runs in the test process while servers and verifiers compute in their own processes on
the same cores: OpenMP threads must wait passively, as every ``efedllm`` process has them do.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from tests.support.chain import *  # noqa: F403
