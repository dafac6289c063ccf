"""schema.json (the enums, contract list and deployment format that Python and the dashboard read) must be
what the Solidity sources and the Python constants give today: a contract's enum edited without regenerating
the file fails here (regenerate with `python -m efedllm.chain.schema`)."""

from efedllm.chain.enums import Outcome, Phase, Status
from efedllm.chain.schema import SCHEMA_PATH, generate, render


def test_schema_json_matches_the_contracts():
    assert SCHEMA_PATH.read_text() == render(generate()), "stale: run `python -m efedllm.chain.schema`"


def test_enums_follow_the_schema():
    assert (Phase.COMMIT_WORK, Phase.SETTLED, Status.DEACTIVATED, Outcome.NO_QUORUM) == (2, 6, 3, 5)
    assert Outcome.NO_QUORUM.label == "no quorum"
