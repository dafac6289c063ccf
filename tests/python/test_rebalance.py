"""Where a rebalancing server moves: to the first uncovered run, only when leaving uncovers nothing."""

from __future__ import annotations

from efedllm.server.rebalance import target_span


def test_moves_to_the_first_gap_within_capacity():
    coverage = [2] * 10 + [1] * 10 + [0] * 10
    assert target_span(coverage, mine=range(0, 10), capacity=10) == range(20, 30)
    assert target_span(coverage, mine=range(0, 10), capacity=4) == range(20, 24)
    gaps = [2] * 5 + [0] * 3 + [1] * 2 + [0] * 2
    assert target_span(gaps, mine=range(0, 5), capacity=10) == range(5, 8)


def test_stays_when_its_own_layers_would_be_uncovered_or_nothing_is_missing():
    assert target_span([1] * 10 + [0] * 20, mine=range(0, 10), capacity=30) is None
    assert target_span([2] * 10 + [1] * 20, mine=range(0, 10), capacity=30) is None
    assert target_span([2] * 5 + [1] * 5 + [0] * 20, mine=range(0, 10), capacity=30) is None
