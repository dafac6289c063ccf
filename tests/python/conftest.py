"""Fixtures for the Python tests: a real Anvil chain per test module, contracts compiled once per session
(tests/support/chain.py, shared with tests/network and tests/browser)."""

from tests.support.chain import *  # noqa: F403
