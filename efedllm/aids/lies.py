"""A lying verifier, for demonstrations and tests only (``efedllm verifier run --lie always-0|always-1``).

It checks servers as an honest verifier does, then reports the same accuracy for every server whatever the checks
said: always-1 covers for a cheat, always-0 smears honest servers. The median over verifiers must
outvote it. ``install_verifier_aid`` replaces the verifier's ``accuracy``.
"""

from __future__ import annotations

from efedllm.aids.config import LIES
from efedllm.chain.params import ONE
from efedllm.errors import EfedError


def lying_accuracy(lie: str):
    """The ``accuracy`` (tally -> acc scaled by ONE) of a verifier that lies ``lie``."""
    if lie not in LIES:
        raise EfedError(f"unknown lie {lie!r}; choose one of {', '.join(LIES)}")
    acc = 0 if lie == "always-0" else ONE
    return lambda tally: acc


def install_verifier_aid(verifier, lie: str, *, progress=print) -> None:
    """Make ``verifier`` (verifier/daemon.py ``Verifier``) report ``lie`` for every server it scores."""
    verifier.accuracy = lying_accuracy(lie)
    progress(f"TEST AID: this verifier lies ({lie})")
