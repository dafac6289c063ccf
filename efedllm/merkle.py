"""Merkle trees over a server's task leaves (keccak256, as on chain).

A server commits the root of its epoch's leaves with `commitWork(epoch, root, workUnits)`; a verifier opens
sampled leaves with a proof. Leaves are hashed once more before entering the tree (domain separation: an inner
node can never pass for a leaf). Inner nodes hash their two children in position order; an odd node at the end
of a level is carried up unchanged. The committed root binds the leaf count too (a tree shape alone does not:
trees of 9 and 14 leaves share the path of leaf 0), so a proof checks against the index and the count that
`workUnits` states; a server that inflates `workUnits` must commit padding leaves, which fail recomputation
when sampled.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_utils import keccak


def leaf_node(leaf: bytes) -> bytes:
    return keccak(b"\x00" + leaf)


def inner_node(left: bytes, right: bytes) -> bytes:
    return keccak(b"\x01" + left + right)


def levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves' hashes first, root last."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    level = [leaf_node(leaf) for leaf in leaves]
    out = [level]
    while len(level) > 1:
        level = [
            inner_node(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)
        ]
        out.append(level)
    return out


def commitment(tree_root: bytes, count: int) -> bytes:
    """What goes on chain: the tree's root bound to its leaf count."""
    return keccak(b"\x02" + tree_root + count.to_bytes(32, "big"))


def root(leaves: Sequence[bytes]) -> bytes:
    """The commitment over ``leaves`` (root bound to their count)."""
    return commitment(levels(leaves)[-1][0], len(leaves))


def proof(tree: list[list[bytes]], index: int) -> list[bytes]:
    """Siblings from the leaf up; a level where the node has no sibling contributes nothing."""
    if not 0 <= index < len(tree[0]):
        raise IndexError(f"leaf {index} is outside a tree of {len(tree[0])} leaves")
    siblings = []
    for level in tree[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            siblings.append(level[sibling])
        index //= 2
    return siblings


def verify(root_hash: bytes, leaf: bytes, index: int, count: int, siblings: Sequence[bytes]) -> bool:
    """Whether ``leaf`` is leaf ``index`` of the ``count``-leaf tree committed as ``root_hash``."""
    if not 0 <= index < count:
        return False
    node, width, used = leaf_node(leaf), count, 0
    while width > 1:
        if index ^ 1 < width:
            if used >= len(siblings):
                return False
            sibling = siblings[used]
            used += 1
            node = inner_node(sibling, node) if index & 1 else inner_node(node, sibling)
        index //= 2
        width = (width + 1) // 2
    return used == len(siblings) and commitment(node, count) == root_hash
