// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {TaskTree} from "../libraries/TaskTree.sol";

/// @title IServingChallenges
/// @notice What a client receives is what the server committed. Every forward answer carries the server's EIP-712
/// signature over its task (TaskTree.Answer: epoch, index, session, step, span, prefix, input and output hashes,
/// and the digest of the client's receipt that paid for the step, zero when none did), and the leaf of that task must be leaf `index` of the root the server committed for the epoch
/// (IWorkLedger.commitWork). Anyone holding such a signed answer can `challenge` it, with a bond, once the
/// epoch's seed is drawn (declared losses are then final) and until the epoch settles. The server must `respond`
/// within `RESPONSE_WINDOW` with the Merkle proof of that leaf at that index against its committed root and leaf
/// count: the challenger's bond is then the server's (it paid for the answer). Unanswered, anyone may `enforce`
/// the challenge: the server is slashed (ServerRegistry.slash, slashFraction of its stake, into the current
/// epoch's pool, and deactivated) and the challenger gets its bond back. A server that signed an answer it did not
/// commit (serve wrong, record right), or signed two different answers for one index, cannot respond; nor can one
/// that signed the client's receipt into the answer and committed another receipt (or none) in the leaf.
/// An epoch whose records the server declared lost before the seed (IWorkLedger.declareLoss) cannot be challenged:
/// the server forfeited its pay for it, and the loss is a soft failure.
interface IServingChallenges {
    enum State {
        None,
        Open, // waiting for the server's proof
        Answered, // the proof showed the leaf at its index: no fraud
        Upheld // unanswered in time: the server was slashed
    }

    struct Challenge {
        address server;
        address challenger;
        uint64 deadline; // last second of the response window
        State state;
        uint256 epoch;
        uint256 index;
        bytes32 leaf;
        uint256 bond;
    }

    event Challenged(
        bytes32 indexed id, address indexed server, uint256 indexed epoch, uint256 index, address challenger, uint256 deadline
    );
    event ChallengeAnswered(bytes32 indexed id, address indexed server, uint256 bond);
    event ChallengeUpheld(bytes32 indexed id, address indexed server, uint256 slashed);
    event BondWithdrawn(address indexed account, uint256 amount);

    error WrongBond(uint256 sent, uint256 required);
    error NotAServer(address signer);
    error SeedNotDrawn(uint256 epoch);
    error EpochSettled(uint256 epoch);
    error EpochForfeited(uint256 epoch, address server);
    error AlreadyChallenged(bytes32 id);
    error NoOpenChallenge(bytes32 id);
    error ResponseWindowOver(bytes32 id, uint256 deadline);
    error ResponseWindowOpen(bytes32 id, uint256 deadline);
    error NotInCommittedRoot(bytes32 id);
    error NothingToWithdraw();
    error TransferFailed();

    /// @notice Challenge the server that signed `answer` (the signer is the server). Requires `msg.value == BOND`, the
    /// epoch's seed drawn, the epoch not settled, and the epoch not declared lost. Returns the challenge's id,
    /// keccak256(server, epoch, index, leaf).
    function challenge(TaskTree.Answer calldata answer, bytes calldata signature) external payable returns (bytes32 id);

    /// @notice Answer challenge `id` with the Merkle siblings of its leaf (anyone may send them; the server does),
    /// within the response window.
    function respond(bytes32 id, bytes32[] calldata siblings) external;

    /// @notice Slash the server of an unanswered challenge once its response window is over (anyone).
    function enforce(bytes32 id) external returns (uint256 slashed);

    /// @notice Pull the bonds owed to the caller (a server's from answered challenges, a challenger's own back).
    function withdrawBonds() external returns (uint256 amount);

    /// @notice The EIP-712 digest a server signs for `answer` (domain: name "eFedLLM Answer", version "1", this
    /// chain, this contract).
    function answerDigest(TaskTree.Answer calldata answer) external view returns (bytes32);
    /// @notice The address that signed `answer` with `signature`.
    function signerOf(TaskTree.Answer calldata answer, bytes calldata signature) external view returns (address);
    function challengeOf(bytes32 id) external view returns (Challenge memory);
    function bondsOf(address account) external view returns (uint256);
    function BOND() external view returns (uint256);
    function RESPONSE_WINDOW() external view returns (uint256);
}
