"""Fixtures of the network tests: the shared chain fixtures (tests/support/chain.py).

The client of most tests runs in the test process while servers and verifiers compute in their own processes on
the same cores: OpenMP threads must wait passively, as every ``efedllm`` process has them do.
"""

import os

from efedllm.openmp import OPENMP_ENV

os.environ.update({k: os.environ.get(k, v) for k, v in OPENMP_ENV.items()})  # before torch loads
from tests.support.chain import *  # noqa: F403
