"""Merkle commitments: every leaf opens, nothing else does; a leaf is encoded as the contract encodes it."""

import re
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from efedllm import merkle
from efedllm.receipts import ANSWER_TYPES, UNPAID, Answer
from efedllm.tasks import TaskRecord


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


# The task leaf and the signed answer, as efedllm/tasks.py and efedllm/receipts.py build them, against what
# contracts/libraries/TaskTree.sol says (read from its source, so that a field added on one side only fails here;
# tests/contracts/test_serving_challenges.py checks the same on chain).
TASK_TREE = Path(__file__).resolve().parents[2] / "contracts" / "libraries" / "TaskTree.sol"


def paid_record(receipt: bytes) -> TaskRecord:
    return TaskRecord(
        epoch=7,
        index=3,
        session="sess",
        step=2,
        start=4,
        end=9,
        past=11,
        prefix_hash=keccak(b"prefix"),
        input_hash=keccak(b"input"),
        output_hash=keccak(b"output"),
        receipt=receipt,
    )


def test_the_answer_type_is_the_contracts():
    source = TASK_TREE.read_text()
    literal = re.search(r"ANSWER_TYPEHASH = keccak256\(((?:\s*\"[^\"]*\")+)\s*\)", source).group(1)
    solidity = "".join(re.findall(r"\"([^\"]*)\"", literal))
    fields = ANSWER_TYPES["Answer"]
    assert solidity == f"Answer({','.join(f['type'] + ' ' + f['name'] for f in fields)})"
    assert fields[-1] == {"name": "receipt", "type": "bytes32"}


def test_the_leaf_is_the_contracts_and_binds_the_clients_receipt():
    """TaskTree.leaf's abi.encode arguments, in its order, give TaskRecord.leaf: paid or not."""
    body = re.search(r"function leaf\(.*?abi\.encode\((.*?)\)\s*\);", TASK_TREE.read_text(), re.S).group(1)
    args = [a.strip() for a in body.split(",")]
    assert args[-1] == "a.receipt"
    kinds = {f["name"]: f["type"] for f in ANSWER_TYPES["Answer"]}
    server = "0x" + "ab" * 20
    for receipt in (UNPAID, keccak(b"a client's receipt")):
        record = paid_record(receipt)
        message = Answer.of(record).message()
        values = [server if a == "server" else message[a.removeprefix("a.")] for a in args]
        types = ["address" if a == "server" else kinds[a.removeprefix("a.")] for a in args]
        assert keccak(abi_encode(types, values)) == record.leaf(server)
    assert (
        paid_record(UNPAID).leaf(server)
        != paid_record(keccak(b"r")).leaf(server)
        != paid_record(keccak(b"s")).leaf(server)
    )
