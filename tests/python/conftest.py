"""Fixtures for the Python tests: a real Anvil chain per test module, contracts compiled once per session
(tests/chain_fixtures.py, shared with tests/network)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chain_fixtures import *  # noqa: E402,F403
