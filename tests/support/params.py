"""The protocol parameters the contract and browser tests deploy with: short epochs whose four windows take 20 s
each, so that a test warps through an epoch cycle in a few steps, and two verifiers, so that scoring needs both.

Verifiers are paid nothing here (``verifier_share=0``), so that the tests that compute a server's share by hand see
the whole pool; the verifier-pay tests and the state machine choose a share.

Only what differs from ``ProtocolParams()``'s defaults is written; a test that needs another value says it with
``dataclasses.replace(TEST_PARAMS, ...)``.
"""

from __future__ import annotations

from efedllm.chain.params import ProtocolParams

TEST_PARAMS = ProtocolParams(
    epoch_length=100, commit_scores_window=20, unbonding_period=400, min_verifiers=2, verifier_share=0
)
