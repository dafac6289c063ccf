"""Fixtures of the network tests: the shared chain fixtures (tests/chain_fixtures.py).

The client of most tests runs in the test process while servers and verifiers compute in their own processes on
the same cores: OpenMP threads must wait passively, as every ``efedllm`` process has them do.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chain_fixtures import *  # noqa: E402,F403
