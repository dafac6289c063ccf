// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IEpochSchedule} from "./interfaces/IEpochSchedule.sol";

/// @title EpochSchedule
/// @notice Immutable protocol clock shared by every eFedLLM contract, so that they all agree on what "epoch e"
/// and its windows mean. It holds no state and has no owner: changing the schedule means a new deployment.
contract EpochSchedule is IEpochSchedule {
    uint256 public immutable GENESIS;
    uint256 public immutable EPOCH_LENGTH;
    uint256 public immutable COMMIT_WORK_WINDOW;
    uint256 public immutable COMMIT_SCORES_WINDOW;
    uint256 public immutable REVEAL_WINDOW;
    uint256 public immutable FINALIZE_WINDOW;

    /// @param genesis Start of epoch 0; 0 means the deployment block's timestamp. A genesis before the
    /// deployment block is rejected (InvalidSchedule).
    constructor(
        uint256 genesis,
        uint256 epochLength,
        uint256 commitWorkWindow,
        uint256 commitScoresWindow,
        uint256 revealWindow,
        uint256 finalizeWindow
    ) {
        if (epochLength == 0 || commitWorkWindow == 0 || commitScoresWindow == 0 || revealWindow == 0
            || finalizeWindow == 0) revert InvalidSchedule();
        if (genesis != 0 && genesis < block.timestamp) revert InvalidSchedule();
        GENESIS = genesis == 0 ? block.timestamp : genesis;
        EPOCH_LENGTH = epochLength;
        COMMIT_WORK_WINDOW = commitWorkWindow;
        COMMIT_SCORES_WINDOW = commitScoresWindow;
        REVEAL_WINDOW = revealWindow;
        FINALIZE_WINDOW = finalizeWindow;
    }

    /// @inheritdoc IEpochSchedule
    /// @dev Before genesis this is 0, and phase(0) says Future.
    function currentEpoch() external view returns (uint256) {
        if (block.timestamp < GENESIS) return 0;
        return (block.timestamp - GENESIS) / EPOCH_LENGTH;
    }

    /// @inheritdoc IEpochSchedule
    function windows(uint256 epoch) public view returns (Windows memory w) {
        w.workStart = GENESIS + epoch * EPOCH_LENGTH;
        w.workEnd = w.workStart + EPOCH_LENGTH;
        w.commitWorkEnd = w.workEnd + COMMIT_WORK_WINDOW;
        w.commitScoresEnd = w.commitWorkEnd + COMMIT_SCORES_WINDOW;
        w.revealEnd = w.commitScoresEnd + REVEAL_WINDOW;
        w.finalizeEnd = w.revealEnd + FINALIZE_WINDOW;
    }

    /// @inheritdoc IEpochSchedule
    function phase(uint256 epoch) external view returns (Phase) {
        Windows memory w = windows(epoch);
        uint256 t = block.timestamp;
        if (t < w.workStart) return Phase.Future;
        if (t < w.workEnd) return Phase.Work;
        if (t < w.commitWorkEnd) return Phase.CommitWork;
        if (t < w.commitScoresEnd) return Phase.CommitScores;
        if (t < w.revealEnd) return Phase.RevealScores;
        if (t < w.finalizeEnd) return Phase.Finalize;
        return Phase.Settled;
    }

    /// @inheritdoc IEpochSchedule
    function nextFullEpoch() external view returns (uint256) {
        if (block.timestamp <= GENESIS) return 0;
        // ceil((t - GENESIS) / EPOCH_LENGTH): the epoch starting now, or else the next one
        return (block.timestamp - GENESIS + EPOCH_LENGTH - 1) / EPOCH_LENGTH;
    }

    /// @inheritdoc IEpochSchedule
    function settlementDelay() external view returns (uint256) {
        return COMMIT_WORK_WINDOW + COMMIT_SCORES_WINDOW + REVEAL_WINDOW + FINALIZE_WINDOW;
    }
}
