// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title TaskTree
/// @notice A server's task leaves and their Merkle tree, exactly as `efedllm/tasks.py` and `efedllm/merkle.py` build
/// them off chain: one format for the server that commits, the verifier that opens and the contract that judges a
/// challenge.
library TaskTree {
    /// @notice One served step as the server signs it for the client (EIP-712) and commits it as a leaf.
    struct Answer {
        uint256 epoch;
        uint256 index; // the leaf's position in the epoch's tree
        bytes32 session; // keccak256 of the session id
        uint256 step;
        uint256 start; // first layer of the span
        uint256 end; // one past its last layer
        uint256 past; // tokens of the session before this step
        bytes32 prefixHash; // running hash of the session's earlier inputs
        bytes32 inputHash;
        bytes32 outputHash;
        bytes32 receipt; // EIP-712 digest of the client's receipt that paid for the step (IPayments), or zero
    }

    bytes32 internal constant ANSWER_TYPEHASH = keccak256(
        "Answer(uint256 epoch,uint256 index,bytes32 session,uint256 step,uint256 start,uint256 end,uint256 past,"
        "bytes32 prefixHash,bytes32 inputHash,bytes32 outputHash,bytes32 receipt)"
    );

    /// @notice The EIP-712 struct hash of an answer.
    function structHash(Answer calldata a) internal pure returns (bytes32) {
        return keccak256(abi.encode(ANSWER_TYPEHASH, a));
    }

    /// @notice The task leaf of `a` served by `server` (TaskRecord.leaf).
    function leaf(Answer memory a, address server) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                a.epoch,
                server,
                a.start,
                a.end,
                a.session,
                a.step,
                a.past,
                a.prefixHash,
                a.inputHash,
                a.outputHash,
                a.receipt
            )
        );
    }

    /// @notice Whether `leafHash` is leaf `index` of the `count`-leaf tree committed as `root` (merkle.verify):
    /// leaves hashed with 0x00, inner nodes with 0x01 in position order, an odd last node carried up, and the root
    /// bound to the count with 0x02.
    function verify(bytes32 root, bytes32 leafHash, uint256 index, uint256 count, bytes32[] calldata siblings)
        internal
        pure
        returns (bool)
    {
        if (index >= count) return false;
        bytes32 node = keccak256(abi.encodePacked(bytes1(0x00), leafHash));
        uint256 used = 0;
        for (uint256 width = count; width > 1; width = (width + 1) / 2) {
            uint256 sibling = index % 2 == 1 ? index - 1 : index + 1;
            if (sibling < width) {
                if (used >= siblings.length) return false;
                bytes32 other = siblings[used++];
                node = index % 2 == 1
                    ? keccak256(abi.encodePacked(bytes1(0x01), other, node))
                    : keccak256(abi.encodePacked(bytes1(0x01), node, other));
            }
            index /= 2;
        }
        return used == siblings.length && keccak256(abi.encodePacked(bytes1(0x02), node, count)) == root;
    }
}
