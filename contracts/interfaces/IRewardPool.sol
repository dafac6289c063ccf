// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IRewardPool
/// @notice Per-epoch reward pools. Clients fund epochs (`fundEpoch`); stake slashed while finalizing epoch e
/// is added to e's pool. When an epoch is finalized, the scorer records each paid server's reward weight
/// S_i * workUnits_i. Once the epoch is settled, each server pulls pool * weight_i / totalWeight during the claim
/// period. A pool that nobody earned can be rolled over into the current epoch at once; after the claim period,
/// what is left of any pool (unclaimed shares, rounding dust) can be rolled over too, and is no longer claimable.
/// Verifying is paid: when at least one server earned a weight, `VERIFIER_SHARE` of the pool goes in equal parts to
/// the epoch's verifiers that revealed their scores and were not found more than κ from a median while the epoch was
/// finalized (the scorer adds them at reveal and removes them at finalize); servers share the rest by weight. An
/// epoch in which no server earned a weight pays no verifier either: its whole pool rolls over, and its verifiers
/// are paid from later pools like everybody else's.
interface IRewardPool {
    /// @notice Totals of one epoch, in wei except `totalWeight` (sum of S_i * workUnits_i, 18 decimals).
    struct EpochPool {
        uint256 funded;
        uint256 slashed;
        uint256 rolledIn;
        uint256 claimed;
        uint256 totalWeight;
        uint256 verifiers; // verifiers paid from this pool (revealed, not penalized for deviating)
        bool rolledOut;
    }

    event EpochFunded(uint256 indexed epoch, address indexed funder, uint256 amount);
    event SlashDeposited(uint256 indexed epoch, address indexed server, uint256 amount);
    event RewardWeightRecorded(uint256 indexed epoch, address indexed server, uint256 weight);
    event RewardsClaimed(address indexed server, uint256 indexed epoch, uint256 amount);
    event PoolRolledOver(uint256 indexed fromEpoch, uint256 indexed toEpoch, uint256 amount);
    event VerifierAdded(uint256 indexed epoch, address indexed verifier);
    event VerifierRemoved(uint256 indexed epoch, address indexed verifier);

    error ZeroAmount();
    error EpochClosed(uint256 epoch, uint256 currentEpoch);
    error AlreadyClaimed(uint256 epoch, address server);
    error NothingToClaim();
    error NotRollable(uint256 epoch);
    error WeightAlreadyRecorded(uint256 epoch, address server);
    error TransferFailed();
    error PoolTooLarge(uint256 epoch, uint256 poolSize, uint256 amount, uint256 maxPool);
    error ClaimPeriodOver(uint256 epoch);
    error VerifierAlreadyAdded(uint256 epoch, address verifier);

    /// @notice Add msg.value to the pool of `epoch` (the current epoch or a later one).
    function fundEpoch(uint256 epoch) external payable;

    /// @notice Add slashed stake of `server` to the pool of `epoch`. Only DEPOSITOR_ROLE (the registry).
    function depositSlashed(uint256 epoch, address server) external payable;

    /// @notice Record `weight` = S_i * workUnits_i for a server that stayed active in `epoch`.
    /// Only SCORER_ROLE (the trust-scoring contract), during the epoch's finalize window.
    function recordWeight(uint256 epoch, address server, uint256 weight) external;

    /// @notice Count `verifier` among the verifiers `epoch`'s pool pays. Only SCORER_ROLE, when the verifier reveals
    /// (the epoch's RevealScores window).
    function addVerifier(uint256 epoch, address verifier) external;

    /// @notice Stop paying `verifier` from `epoch`'s pool (a reveal more than κ from a median). Only SCORER_ROLE,
    /// during the epoch's Finalize window, so that the verifiers paid are fixed once the epoch settles.
    function removeVerifier(uint256 epoch, address verifier) external;

    /// @notice Pay msg.sender its share of each settled epoch in `epochs`. Reverts if any was claimed already
    /// or if the total is zero.
    function claimRewards(uint256[] calldata epochs) external returns (uint256 amount);

    /// @notice Move what a settled epoch's pool still holds into the current epoch's pool (anyone): all of it when
    /// no server earned a weight, or, once the claim period is over, the unclaimed rest.
    function rollOver(uint256 epoch) external;

    function epochPool(uint256 epoch) external view returns (EpochPool memory);
    /// @notice Total wei of the epoch's pool (funded + slashed + rolled in), whether or not claimed.
    function poolSize(uint256 epoch) external view returns (uint256);
    function rewardWeight(uint256 epoch, address server) external view returns (uint256);
    function hasClaimed(uint256 epoch, address server) external view returns (bool);
    /// @notice What `server` could claim now for `epochs` (unsettled or claimed epochs count 0).
    function pendingRewards(address server, uint256[] calldata epochs) external view returns (uint256);
    /// @notice Share of `account` in `epoch` (as a server, plus as a verifier), whether or not settled or claimed.
    function shareOf(uint256 epoch, address account) external view returns (uint256);
    /// @notice The part of `epoch`'s pool that its verifiers share: VERIFIER_SHARE of it when at least one server
    /// earned a weight and at least one verifier is paid, else 0.
    function verifierPot(uint256 epoch) external view returns (uint256);
    function isPaidVerifier(uint256 epoch, address verifier) external view returns (bool);
    /// @notice Share of each epoch's pool set aside for its verifiers, 18 decimals (fixed at deployment).
    function VERIFIER_SHARE() external view returns (uint256);
    function totalFunded() external view returns (uint256);
    function totalSlashed() external view returns (uint256);
    function totalPaid() external view returns (uint256);
    /// @notice Seconds after an epoch settles during which its shares can be claimed.
    function CLAIM_PERIOD() external view returns (uint256);
    /// @notice The time from which the rest of `epoch`'s pool can be rolled over and its shares no longer claimed.
    function claimDeadline(uint256 epoch) external view returns (uint256);
}
