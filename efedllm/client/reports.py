"""A client hands a random sample of its servers' signed answers to the verifiers (issue 14).

Verifiers open a random sample of each server's committed leaves; that checks what a server *recorded*. A server
that records the honest output and sends the client another passes those openings. The client holds the proof of
what it was sent: the server's signature over each answer (client/answers.py). After each generation it posts a
few of them, picked at random per server, to every verifier that announced an endpoint on chain; each verifier
opens those leaves too (verifier/handed.py), and a committed leaf that differs from the signed answer is fraud.
A server cannot tell which of its answers will be handed in, so equivocating on any fraction of its steps is
caught about as often as that fraction of the sample. Handing in is best effort: a verifier that is down is
logged and skipped, and generation never waits more than ``timeout`` per verifier.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable

import requests

from efedllm.receipts import SignedAnswer
from efedllm.rpc.routes import ANSWERS

log = logging.getLogger("efedllm.client")

HANDED_PER_SERVER = 2
"""Signed answers handed in per server and generation, by default."""


class AnswerReporter:
    """Posts samples of signed answers to the verifiers ``verifiers()`` returns (address -> endpoint)."""

    def __init__(
        self,
        verifiers: Callable[[], dict[str, str]],
        *,
        per_server: int = HANDED_PER_SERVER,
        timeout: float = 3.0,
        rng: random.Random | None = None,
    ):
        self.verifiers, self.per_server, self.timeout = verifiers, per_server, timeout
        self.rng = rng or random.Random(secrets.randbits(64))
        self.http = requests.Session()
        self.handed: dict[str, int] = {}
        """Verifier address -> answers it took from this client so far."""

    def sample(self, answers: list[SignedAnswer]) -> list[SignedAnswer]:
        by_server: dict[str, list[SignedAnswer]] = {}
        for signed in answers:
            by_server.setdefault(signed.server, []).append(signed)
        picked = []
        for kept in by_server.values():
            picked += self.rng.sample(kept, min(self.per_server, len(kept)))
        return picked

    def hand(self, answers: list[SignedAnswer], *, disputed: list[SignedAnswer] = ()) -> int:
        """Hand a sample of ``answers``, and every ``disputed`` one (client/spotcheck.py), to every verifier; how
        many verifiers took them."""
        picked = self.sample(answers) if self.per_server > 0 else []
        picked += [a for a in disputed if a not in picked]
        if not picked:
            return 0
        try:
            verifiers = self.verifiers()
        except Exception as exc:  # noqa: BLE001 - the chain is away: this generation's answers go unhanded
            log.warning("cannot find the verifiers to hand answers to (%s)", exc.__class__.__name__)
            return 0
        body = {"answers": [a.to_json() for a in picked]}
        took = 0
        for address, endpoint in verifiers.items():
            try:
                response = self.http.post(endpoint.rstrip("/") + ANSWERS, json=body, timeout=self.timeout)
            except requests.RequestException as exc:
                log.warning("verifier %s at %s is unreachable (%s)", address, endpoint, exc.__class__.__name__)
                continue
            if response.status_code != 202:
                log.warning(
                    "verifier %s refused the answers: HTTP %d %s", address, response.status_code, response.text[:200]
                )
                continue
            self.handed[address] = self.handed.get(address, 0) + response.json().get("accepted", 0)
            took += 1
        return took
