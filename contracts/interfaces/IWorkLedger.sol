// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IWorkLedger
/// @notice Servers commit, once per epoch, to the Merkle root over the task records (leaves) they served and
/// to how many there are. Rewards are paid in proportion to these work units, and verifiers sample the leaves
/// with a seed drawn only after every commitment window has closed, from salts that staked verifiers committed
/// before it closed (ITrustScoring.drawSeed), so a server could not know which of its tasks would be checked when it
/// committed, nor choose the seed afterwards.
interface IWorkLedger {
    /// @notice A server's commitment for one epoch. The span is the server's span in that epoch (its l_i, a fact of
    /// the work period). `lost`: the server declared its records of the epoch lost before the seed was drawn; it
    /// forfeits the epoch's pay and is not slashed for it.
    struct Commitment {
        bytes32 root;
        uint64 workUnits;
        uint16 firstLayer;
        uint16 numLayers;
        uint64 committedAt;
        bool lost;
    }

    event WorkCommitted(
        uint256 indexed epoch, address indexed server, bytes32 root, uint256 workUnits, uint256 firstLayer, uint256 numLayers
    );
    event SeedDrawn(uint256 indexed epoch, bytes32 seed, address drawer);
    event LossDeclared(uint256 indexed epoch, address indexed server);

    error ServerNotEligible(address server);
    error WorkAlreadyCommitted(uint256 epoch, address server);
    error EmptyCommitment();
    error TooManyWorkUnits(uint256 workUnits, uint256 max);
    error SeedAlreadyDrawn(uint256 epoch);
    error EmptySeed();
    error NothingToDeclare(uint256 epoch, address server);

    /// @notice Commit msg.sender's work of `epoch` during its CommitWork window.
    function commitWork(uint256 epoch, bytes32 root, uint256 workUnits) external;

    /// @notice Record the sampling seed of `epoch`, once, during its CommitScores window (after every commitment is
    /// final). Only SEEDER_ROLE (the trust-scoring contract, whose `drawSeed` anyone may call); `drawer` is that
    /// caller.
    function recordSeed(uint256 epoch, bytes32 seed, address drawer) external;

    /// @notice Declare the caller's records of `epoch` lost (a failed disk, a new machine): it cannot open the leaves
    /// it committed. Allowed after committing and before the epoch's seed is drawn (in the CommitWork or
    /// CommitScores window), so nobody can declare a loss once they know which leaves are sampled. The epoch then
    /// ends Forfeited for the server: not paid, not slashed.
    function declareLoss(uint256 epoch) external;

    function commitmentOf(uint256 epoch, address server) external view returns (Commitment memory);
    /// @notice What finalize needs of a commitment: its work units (0: none) and whether it was declared lost.
    function workOf(uint256 epoch, address server) external view returns (uint256 workUnits, bool lost);
    /// @notice The seed of `epoch`, or zero before it is drawn.
    function sampleSeed(uint256 epoch) external view returns (bytes32);
    /// @notice Number of servers that committed work for `epoch`.
    function committedServers(uint256 epoch) external view returns (uint256);
    function MAX_WORK_UNITS() external view returns (uint256);
}
