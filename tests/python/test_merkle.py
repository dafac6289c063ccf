"""Merkle commitments: every leaf opens, nothing else does."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from efedllm import merkle


def leaves(n):
    return [i.to_bytes(32, "big") for i in range(n)]


@given(st.integers(min_value=1, max_value=70))
@settings(max_examples=40, deadline=None)
def test_every_leaf_opens_against_the_root(n):
    tree = merkle.levels(leaves(n))
    root = merkle.root(leaves(n))
    for i, leaf in enumerate(leaves(n)):
        assert merkle.verify(root, leaf, i, n, merkle.proof(tree, i))


@given(st.integers(min_value=2, max_value=40), st.data())
@settings(max_examples=40, deadline=None)
def test_wrong_leaf_index_count_or_proof_fails(n, data):
    tree = merkle.levels(leaves(n))
    root = merkle.root(leaves(n))
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    proof = merkle.proof(tree, i)
    assert not merkle.verify(root, b"\xff" * 32, i, n, proof)
    assert not merkle.verify(root, leaves(n)[i], (i + 1) % n, n, proof)
    assert not merkle.verify(root, leaves(n)[i], i, n, proof[:-1])
    assert not merkle.verify(root, leaves(n)[i], i, n + 5, proof)  # the count is bound to the root


def test_an_inflated_count_opens_nothing_against_the_real_tree():
    real = leaves(10)
    tree = merkle.levels(real)
    committed = merkle.root(real)
    for claimed in (11, 14, 16, 20):
        assert not any(merkle.verify(committed, leaf, j, claimed, merkle.proof(tree, j)) for j, leaf in enumerate(real))
        with pytest.raises(IndexError):
            merkle.proof(tree, claimed - 1)


def test_a_leaf_is_not_an_inner_node():
    tree = merkle.levels(leaves(4))
    inner = tree[1][0]
    assert not merkle.verify(merkle.root(leaves(4)), inner, 0, 2, [tree[1][1]])
    assert not merkle.verify(merkle.commitment(tree[-1][0], 2), inner, 0, 2, [tree[1][1]])
