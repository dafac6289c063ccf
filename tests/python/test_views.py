"""Structs decode by the ABI's component names; an ABI whose struct differs from the dataclass fails loudly."""

import pytest

from efedllm.chain.enums import Outcome
from efedllm.chain.views import Score, StructDecoder, StructMismatch


def _abi(names):
    components = [{"name": n, "type": "uint256"} for n in names]
    return [
        {
            "type": "function",
            "name": "scoreOf",
            "inputs": [],
            "outputs": [{"name": "", "type": "tuple", "components": components}],
        }
    ]


def test_decodes_by_name_whatever_the_order():
    decode = StructDecoder(Score, _abi(["outcome", "acc", "score", "numLayers", "maxLayers", "verifiers"]), "scoreOf")
    score = decode((5, 1, 2, 3, 4, 6))
    assert (score.outcome, score.acc, score.score, score.verifiers) == (Outcome.NO_QUORUM, 1, 2, 6)


def test_a_new_struct_field_fails_loudly():
    abi = _abi(["acc", "score", "numLayers", "maxLayers", "verifiers", "outcome", "bonus"])
    with pytest.raises(StructMismatch, match="bonus"):
        StructDecoder(Score, abi, "scoreOf")
