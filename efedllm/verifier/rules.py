"""How far an honest server's output may land from the verifier's recomputation, per declared configuration.

A server declares on chain the dtype it computes in and its weight format (IServerRegistry.declareServing). The
verifier recomputes an opened step (or a canary) *in the declared configuration* (efedllm/model/serving.py: the
same dtype, and for int8 the same int8 weights, quantized from the same float weights) and compares with
``deviation`` (verifier/checks.py): the worst token's relative L2 error. The honest difference then comes only
from the order in which the two computations accumulate (a prefill split into steps on the server, one pass over
the whole prefix on the verifier, other kernels or thread counts), not from the declared precision's rounding
against float32; for bfloat16 it still grows with the span's length, as every layer rounds to 8 mantissa bits.

The bounds come from ``python bench/gpu.py --device cpu --verifiers cpu --spans wide --decode 300`` (docs/PRECISION.md):
9,933 honest steps per configuration on the real model (chat, code and a 500-token prompt, each a prefill and 300
decode steps, through 11 spans of 1, 5 and 10 layers; CPU only, no GPU was lent). Each bound is **3x the worst honest
step measured** for spans up to that length; spans longer than 10 layers scale the 10-layer bound by length/10 (the
honest error grows with depth; never measured beyond 10). float32 and int8/float32 keep one bound, 1e-3, 128x above
the honest maximum (7.8e-6) and 2.2x below the weakest cheat measured (2.2e-3). The 459 honest steps per
configuration of ``bench/precision.py --verifier declared`` (other prompts, shorter decodes), not used to set the
bounds, all stay below a third of them.

What each bound catches (``python bench/rule.py``, docs/PRECISION.md): float32 and int8/float32 every measured cheat
on every opened step (0.5% noise, a skipped layer, a 1%-perturbed model, a lower precision); float16 each of them
within an epoch's 44 openings (per step: 33% to 100%); bfloat16 and int8/bfloat16 gross cheats for sure (a skipped
layer, 4-bit weights), a 1% weight perturbation in about half the epochs, float16 compute and 0.5% noise seldom or
never. That is a measured limit of checking bfloat16 by recomputation, stated in docs/GPU_PROVIDERS.md and
docs/SECURITY.md, not hidden by this rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from efedllm.chain.views import Serving
from efedllm.verifier.config import FLOAT32_TOLERANCE

HEADROOM = 3.0
"""Each bound over the worst honest deviation measured at its span lengths."""


@dataclass(frozen=True)
class Rule:
    """Largest accepted deviation by span length: ``steps`` is ((up to this many layers, bound), ...) ascending."""

    label: str
    steps: tuple[tuple[int, float], ...]

    def bound(self, layers: int) -> float:
        """The bound for a span of ``layers`` layers."""
        for most, bound in self.steps:
            if layers <= most:
                return bound
        most, bound = self.steps[-1]
        return bound * layers / most


def _measured(label: str, one: float, five: float, ten: float) -> Rule:
    """A rule from the honest maxima measured for spans of 1, 5 and 10 layers."""
    return Rule(label, ((1, HEADROOM * one), (5, HEADROOM * five), (10, HEADROOM * ten)))


FLOAT32 = Rule("float32", ((1 << 30, FLOAT32_TOLERANCE),))

RULES: dict[str, Rule] = {
    "float32": FLOAT32,
    "int8/float32": Rule("int8/float32", FLOAT32.steps),
    # honest deviation maxima over 9,933 steps (declared-precision verifier), 1 / 5 / 10 layers: docs/PRECISION.md
    "float16": _measured("float16", 1.49e-3, 3.80e-3, 3.99e-3),
    "bfloat16": _measured("bfloat16", 6.14e-3, 2.36e-2, 2.52e-2),
    "int8/bfloat16": _measured("int8/bfloat16", 8.48e-3, 1.99e-2, 2.38e-2),
    # not measured: int8 weights with float16 compute take float16's maxima with int8/bfloat16's margin over bfloat16
    "int8/float16": _measured("int8/float16", 1.49e-3 * 1.4, 3.80e-3 * 1.4, 3.99e-3 * 1.4),
}


def rule_for(serving: Serving) -> Rule:
    return RULES[serving.label]


def tolerance(serving: Serving, layers: int, *, float32: float = FLOAT32_TOLERANCE) -> float:
    """The largest accepted deviation of a ``layers``-layer step served as ``serving``; ``float32`` replaces the
    bound of float32 compute (full or int8 weights): a verifier's ``--tolerance``."""
    rule = rule_for(serving)
    return float32 if rule.steps == FLOAT32.steps else rule.bound(layers)
