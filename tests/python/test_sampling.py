"""Which tasks a verifier opens: fixed by the chain's seed, spread over the commitment, and how likely they catch."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from efedllm.verifier.sampling import detection_probability, sample_indices, samples_needed

A, B = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


@given(seed=st.binary(min_size=32, max_size=32), units=st.integers(1, 5000), samples=st.integers(0, 100))
def test_samples_are_distinct_in_range_and_determined_by_seed_and_server(seed, units, samples):
    chosen = sample_indices(seed, A, units, samples)
    assert len(chosen) == min(units, samples) == len(set(chosen))
    assert all(0 <= i < units for i in chosen)
    assert chosen == sample_indices(seed, A, units, samples)


def test_another_seed_or_server_gives_another_sample():
    seed = bytes(range(32))
    assert sample_indices(seed, A, 10_000, 44) != sample_indices(seed, B, 10_000, 44)
    assert sample_indices(seed, A, 10_000, 44) != sample_indices(bytes(32), A, 10_000, 44)


def test_detection_probability_matches_its_definition_and_simulation():
    assert samples_needed(corrupted=0.1, target=0.99) == 44
    assert detection_probability(corrupted=0.1, samples=44) >= 0.99
    assert detection_probability(corrupted=0.1, samples=43) < 0.99
    assert detection_probability(corrupted=0.1, samples=44, work_units=44) == 1.0  # everything is opened
    assert detection_probability(corrupted=0.0, samples=44, work_units=100) == 0.0
    rng = random.Random(1)
    units, bad, trials = 500, 50, 4000
    caught = 0
    for _ in range(trials):
        corrupted = set(rng.sample(range(units), bad))
        seed = rng.randbytes(32)
        caught += any(i in corrupted for i in sample_indices(seed, A, units, 44))
    expected = detection_probability(corrupted=0.1, samples=44, work_units=units)
    assert abs(caught / trials - expected) < 0.01
