// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IEpochSchedule
/// @notice The protocol clock. Epoch `e` is a work period followed by consecutive windows in which servers
/// commit their work, verifiers commit and then reveal scores, and anyone finalizes. Once settled, rewards of
/// `e` can be claimed. The windows of epoch `e` overlap the work period of later epochs, so work never stops.
interface IEpochSchedule {
    /// @notice Where epoch `e` stands at the current block's timestamp.
    enum Phase {
        Future, // e has not started
        Work, // servers serve inference and record tasks
        CommitWork, // servers post commitWork(e, root, workUnits)
        CommitScores, // the sampling seed is drawn; verifiers check openings and commit scores
        RevealScores, // verifiers reveal their scores
        Finalize, // anyone calls finalize(e, servers)
        Settled // rewards of e are claimable
    }

    /// @notice The timestamps at which each window of an epoch ends (each window starts where the previous ends).
    struct Windows {
        uint256 workStart;
        uint256 workEnd;
        uint256 commitWorkEnd;
        uint256 commitScoresEnd;
        uint256 revealEnd;
        uint256 finalizeEnd;
    }

    /// @notice The current block is outside of the window this call needs for epoch `epoch`.
    error WrongPhase(uint256 epoch, Phase expected, Phase actual);

    /// @notice Constructor arguments out of range (a zero length, or a genesis in the past beyond the block).
    error InvalidSchedule();

    /// @notice Timestamp at which epoch 0 starts.
    function GENESIS() external view returns (uint256);
    /// @notice Length of one epoch's work period, in seconds.
    function EPOCH_LENGTH() external view returns (uint256);
    /// @notice Length of the window for `commitWork`, in seconds.
    function COMMIT_WORK_WINDOW() external view returns (uint256);
    /// @notice Length of the window for drawing the seed, verifying and `commitScores`, in seconds.
    function COMMIT_SCORES_WINDOW() external view returns (uint256);
    /// @notice Length of the window for `revealScores`, in seconds.
    function REVEAL_WINDOW() external view returns (uint256);
    /// @notice Length of the window for `finalize`, in seconds.
    function FINALIZE_WINDOW() external view returns (uint256);

    /// @notice The epoch whose work period contains the current block.
    function currentEpoch() external view returns (uint256);
    /// @notice The windows of `epoch`.
    function windows(uint256 epoch) external view returns (Windows memory);
    /// @notice The phase of `epoch` at the current block.
    function phase(uint256 epoch) external view returns (Phase);
    /// @notice The first epoch whose whole work period lies at or after the current block: the epoch from which a
    /// change made now (a registration, a span move, an activation) counts. Before genesis this is epoch 0; at
    /// the first second of an epoch it is that epoch; otherwise the next one.
    function nextFullEpoch() external view returns (uint256);
    /// @notice Seconds from the end of an epoch's work period to its settlement (sum of all windows).
    function settlementDelay() external view returns (uint256);
}
