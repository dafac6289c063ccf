"""How far an honest server's output may land from the verifier's recomputation, per declared configuration.

A server declares on chain the dtype it computes in and its weight format (IServerRegistry.declareServing). The
verifier recomputes an opened step (or a canary) *in the declared configuration* (efedllm/model/serving.py: the
same dtype, and for int8 the same int8 weights, quantized from the same float weights) and compares with
``deviation`` (verifier/checks.py): the worst token's relative L2 error. The honest difference then comes only
from the order in which the two computations accumulate (a prefill split into steps on the server, one pass over
the whole prefix on the verifier, other kernels or thread counts), not from the declared precision's rounding
against float32; for bfloat16 it still grows with the span's length, as every layer rounds to 8 mantissa bits.

The bounds come from two runs on the real model (docs/PRECISION.md), 19,998 honest steps per configuration in all,
CPU only (no GPU was lent): ``python bench/gpu.py --device cpu --verifiers cpu --spans wide --decode 300`` (9,933:
chat, code and a 500-token prompt, each a prefill and 300 decode steps of a repeated token, through 11 spans of 1, 5
and 10 layers) and the honest rows of ``python bench/precision.py --verifier declared --spans wide --decode 304``
(10,065: the same spans, the model's own greedy continuations). Each bound is **3x the worst honest step measured**
for spans up to that length (so a longer span's bound is never below a shorter one's); spans longer than 10 layers
scale the 10-layer bound by length/10 (the honest error grows with depth; never measured beyond 10). The second run
is why both count: set from the first run alone, the int8/bfloat16 bound for 5 layers was reached to 0.87 by one
honest step of the second (5.2e-2 against 2.0e-2 before): the tail of bfloat16's honest error is long, and the
margin a bound keeps is only as good as the number of steps behind it. float32 and int8/float32 keep one bound,
1e-3, 128x above the honest maximum (7.8e-6) and at or below the weakest cheat measured (9.4e-4 to 2.2e-3).

What each bound catches (``python bench/rule.py``, docs/PRECISION.md, 10,065 steps of each cheat): float32 and
int8/float32 every measured cheat on (nearly) every opened step (0.5% noise, a skipped layer, a 1%-perturbed model, a
lower precision); float16 each of them within an epoch's 44 openings (per step: 22% to 100%); bfloat16 and
int8/bfloat16 gross cheats for sure (a skipped layer, 4-bit weights), a 1% weight perturbation or int8 compute in
2-4% of epochs, float16 compute and 0.5% noise never. That is a measured limit of checking bfloat16 by recomputation, stated in docs/GPU_PROVIDERS.md and
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
    """A rule from the honest maxima measured for spans of 1, 5 and 10 layers (each at least the shorter's)."""
    five, ten = max(one, five), max(one, five, ten)
    return Rule(label, ((1, HEADROOM * one), (5, HEADROOM * five), (10, HEADROOM * ten)))


FLOAT32 = Rule("float32", ((1 << 30, FLOAT32_TOLERANCE),))

RULES: dict[str, Rule] = {
    "float32": FLOAT32,
    "int8/float32": Rule("int8/float32", FLOAT32.steps),
    # honest deviation maxima over 19,998 steps (declared-precision verifier), 1 / 5 / 10 layers: docs/PRECISION.md
    "float16": _measured("float16", 1.49e-3, 3.80e-3, 3.99e-3),
    "bfloat16": _measured("bfloat16", 7.29e-3, 2.53e-2, 3.08e-2),
    "int8/bfloat16": _measured("int8/bfloat16", 1.09e-2, 5.20e-2, 2.38e-2),
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
