"""A faulty server, for demonstrations and tests only (``efedllm server run --fault KIND``).

A faulty server shows that the protocol catches each way a provider could cheat: every kind must end with the
server deactivated and slashed. Kinds:

``noise``    adds Gaussian noise (``scale`` times the output's standard deviation) to a step's output: a server
             cutting corners (lower precision, pruned layers) whose answers still look plausible.
``replay``   returns the output of another, earlier step of the same shape instead of computing: a lazy server.
``skip``     returns its input unchanged, as if its layers were not there.
``inflate``  claims ``1 + rate`` times the work units it served when it commits an epoch.
``refuse``   serves honestly but refuses every opening, hiding its work from verifiers.
``equivocate`` records and commits the honest output but sends the client a noisy one (``scale`` as for noise),
             signed: "serve wrong, record right". Its openings pass; the client's signed answer does not match
             its committed leaf, so a challenge (ServingChallenges) slashes it.
``equivocate-grouped`` does so only to steps that came grouped (``POST /steps``, as a busy client's decode
             steps travel) and answers steps sent alone honestly: a server that guesses a verifier's canaries come
             one at a time. The verifier's grouped canaries (verifier/canaries.py) catch it.

``lower``, ``layer``, ``model``, ``svd`` compute something other than the declared configuration: substitutes.py.

``rate`` is the fraction of steps affected (noise, replay, skip) or the inflation (inflate).

``install_server_aid`` puts a fault into an assembled server (server/main.py ``ServerParts``) before it serves:
a step fault as an output filter (filters run before the step hooks, so the task recorder records the faulty
answer that goes out), equivocate as an outgoing filter (after the recorder: the record stays honest), inflate as the committer's ``claim_units``, refuse as a wrapper around the openings handler.
"""

from __future__ import annotations

import math
import random

import torch

from efedllm.aids.config import EQUIVOCATING_KINDS, STEP_KINDS, SUBSTITUTE_KINDS, FaultConfig
from efedllm.aids.substitutes import substitute
from efedllm.server.app import CONFIG, FILTERS, OUTGOING, serving
from efedllm.server.main import ServerParts, load_span
from efedllm.server.sessions import SessionError


class Fault:
    def __init__(self, config: FaultConfig):
        self.config = config
        self._rng = random.Random(config.seed)
        self._noise = torch.Generator().manual_seed(config.seed)
        self._seen: dict[tuple, torch.Tensor] = {}
        self.steps_faulted = 0

    def work_units(self, served: int) -> int:
        """What the server claims on chain for ``served`` tasks."""
        if self.config.kind != "inflate":
            return served
        return served + max(1, math.ceil(served * self.config.rate))

    def apply(self, *, inputs: torch.Tensor, outputs: torch.Tensor, grouped: bool = False) -> torch.Tensor:
        """The answer a faulty server gives for a step whose honest output is ``outputs`` (``grouped``: the step
        came with others in one ``POST /steps``)."""
        kind = self.config.kind
        if kind in EQUIVOCATING_KINDS:
            if (kind == "equivocate-grouped" and not grouped) or self._rng.random() >= self.config.rate:
                return outputs
            self.steps_faulted += 1
            noise = torch.randn(outputs.shape, generator=self._noise, dtype=outputs.dtype)
            return outputs + noise * (self.config.scale * outputs.std())
        if kind not in STEP_KINDS:
            return outputs
        shape = tuple(outputs.shape)
        earlier = self._seen.get(shape)
        self._seen[shape] = outputs
        if self._rng.random() >= self.config.rate:
            return outputs
        if kind == "noise":
            noise = torch.randn(outputs.shape, generator=self._noise, dtype=outputs.dtype)
            faulty = outputs + noise * (self.config.scale * outputs.std())
        elif kind == "skip":
            faulty = inputs.clone()
        elif earlier is not None:  # replay
            faulty = earlier.clone()
        else:
            return outputs
        self.steps_faulted += 1
        return faulty


def install_server_aid(server: ServerParts, config: FaultConfig, *, progress=print) -> Fault:
    """Make the assembled ``server`` misbehave as ``config`` says; returns the installed fault."""
    fault = Fault(config)
    progress(f"TEST AID: this server misbehaves on purpose ({config.kind}, rate {config.rate})")
    if config.kind in SUBSTITUTE_KINDS:
        span = serving(server.app).span
        substitute(
            span, server.app[CONFIG], config, load=lambda c, first, count: load_span(c, first, count, progress=progress)
        )
    elif config.kind in STEP_KINDS:
        server.app[FILTERS].append(fault.apply)
    elif config.kind in EQUIVOCATING_KINDS:
        server.app[OUTGOING].append(fault.apply)
    elif config.kind == "inflate" and server.committer is not None:
        server.committer.claim_units = fault.work_units
    elif config.kind == "refuse" and server.openings is not None:
        server.openings = refusing(server.openings)
    return fault


def refusing(handler):
    """The openings handler ``handler``, except that every opening it would give is refused (403) instead."""

    async def openings(request):
        await handler(request)  # every check a real opening gets (the nonce is used); its errors go out as they are
        raise SessionError(403, "openings are refused")

    return openings
