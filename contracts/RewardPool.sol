// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Governed} from "./governance/Governed.sol";
import {IEpochSchedule} from "./interfaces/IEpochSchedule.sol";
import {IRewardPool} from "./interfaces/IRewardPool.sol";

/// @title RewardPool
/// @notice Holds epoch pools and pays servers by pull. See IRewardPool.
/// @dev Invariant: balance == sum over epochs of (funded + slashed + rolledIn - claimed - rolled out), where a
/// rolled-out pool moved what it still held (all of it, or what was left unclaimed after the claim period).
contract RewardPool is IRewardPool, Governed, ReentrancyGuard {
    /// @notice May deposit slashed stake: the server registry.
    bytes32 public constant DEPOSITOR_ROLE = keccak256("DEPOSITOR_ROLE");
    /// @notice May record reward weights: the trust-scoring contract.
    bytes32 public constant SCORER_ROLE = keccak256("SCORER_ROLE");
    /// @notice Most wei one epoch's pool may be funded to, so that no share computation or roll-over can overflow.
    uint256 public constant MAX_POOL = type(uint128).max;
    uint256 public constant MAX_CLAIM_PERIOD = 10 * 365 days;
    /// @notice Verifiers get at most half of a pool.
    uint256 public constant MAX_VERIFIER_SHARE = 5e17;
    uint256 private constant ONE = 1e18;

    /// @notice Seconds after an epoch settles during which its shares can be claimed; after that, what is left
    /// (unclaimed shares and rounding dust) can be rolled over into the current epoch.
    uint256 public immutable CLAIM_PERIOD;
    /// @notice Share of a pool that its epoch's verifiers split (when some server earned a weight), 18 decimals.
    /// Immutable: a later governance call cannot change what an epoch already worked for pays.
    uint256 public immutable VERIFIER_SHARE;

    uint256 public totalFunded;
    uint256 public totalSlashed;
    uint256 public totalPaid;

    mapping(uint256 => EpochPool) private _pools;
    mapping(uint256 => mapping(address => uint256)) private _weights;
    mapping(uint256 => mapping(address => bool)) private _claimed;
    mapping(uint256 epoch => mapping(address verifier => bool)) private _paidVerifiers;

    constructor(address governor, IEpochSchedule schedule_, uint256 claimPeriod, uint256 verifierShare)
        Governed(governor, schedule_)
    {
        if (claimPeriod == 0 || claimPeriod > MAX_CLAIM_PERIOD) {
            revert ParameterOutOfBounds("claimPeriod", claimPeriod, 1, MAX_CLAIM_PERIOD);
        }
        if (verifierShare > MAX_VERIFIER_SHARE) {
            revert ParameterOutOfBounds("verifierShare", verifierShare, 0, MAX_VERIFIER_SHARE);
        }
        CLAIM_PERIOD = claimPeriod;
        VERIFIER_SHARE = verifierShare;
    }

    /// @inheritdoc IRewardPool
    function fundEpoch(uint256 epoch) external payable whenNotPaused {
        if (msg.value == 0) revert ZeroAmount();
        uint256 current = _currentEpoch();
        if (epoch < current) revert EpochClosed(epoch, current);
        uint256 size = poolSize(epoch);
        // (a pool can pass the cap by roll-overs and slashed stake; then it takes no more funding)
        if (size > MAX_POOL || msg.value > MAX_POOL - size) revert PoolTooLarge(epoch, size, msg.value, MAX_POOL);
        _pools[epoch].funded += msg.value;
        totalFunded += msg.value;
        emit EpochFunded(epoch, msg.sender, msg.value);
    }

    /// @inheritdoc IRewardPool
    function depositSlashed(uint256 epoch, address server) external payable onlyRole(DEPOSITOR_ROLE) whenNotPaused {
        _pools[epoch].slashed += msg.value;
        totalSlashed += msg.value;
        emit SlashDeposited(epoch, server, msg.value);
    }

    /// @inheritdoc IRewardPool
    function recordWeight(uint256 epoch, address server, uint256 weight)
        external
        onlyRole(SCORER_ROLE)
        whenNotPaused
    {
        _requirePhase(epoch, IEpochSchedule.Phase.Finalize);
        if (_weights[epoch][server] != 0) revert WeightAlreadyRecorded(epoch, server);
        _weights[epoch][server] = weight;
        _pools[epoch].totalWeight += weight;
        emit RewardWeightRecorded(epoch, server, weight);
    }

    /// @inheritdoc IRewardPool
    function addVerifier(uint256 epoch, address verifier) external onlyRole(SCORER_ROLE) whenNotPaused {
        _requirePhase(epoch, IEpochSchedule.Phase.RevealScores);
        if (_paidVerifiers[epoch][verifier]) revert VerifierAlreadyAdded(epoch, verifier);
        _paidVerifiers[epoch][verifier] = true;
        _pools[epoch].verifiers += 1;
        emit VerifierAdded(epoch, verifier);
    }

    /// @inheritdoc IRewardPool
    function removeVerifier(uint256 epoch, address verifier) external onlyRole(SCORER_ROLE) whenNotPaused {
        _requirePhase(epoch, IEpochSchedule.Phase.Finalize);
        if (!_paidVerifiers[epoch][verifier]) return;
        _paidVerifiers[epoch][verifier] = false;
        _pools[epoch].verifiers -= 1;
        emit VerifierRemoved(epoch, verifier);
    }

    /// @inheritdoc IRewardPool
    function claimRewards(uint256[] calldata epochs) external nonReentrant whenNotPaused returns (uint256 amount) {
        for (uint256 i = 0; i < epochs.length; ++i) {
            uint256 epoch = epochs[i];
            _requirePhase(epoch, IEpochSchedule.Phase.Settled);
            if (_claimed[epoch][msg.sender]) revert AlreadyClaimed(epoch, msg.sender);
            if (_pools[epoch].rolledOut) revert ClaimPeriodOver(epoch);
            uint256 share = shareOf(epoch, msg.sender);
            if (share == 0) continue;
            _claimed[epoch][msg.sender] = true;
            _pools[epoch].claimed += share;
            amount += share;
            emit RewardsClaimed(msg.sender, epoch, share);
        }
        if (amount == 0) revert NothingToClaim();
        totalPaid += amount;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @inheritdoc IRewardPool
    function rollOver(uint256 epoch) external whenNotPaused {
        _requirePhase(epoch, IEpochSchedule.Phase.Settled);
        EpochPool storage p = _pools[epoch];
        uint256 amount = 0;
        if (!p.rolledOut) {
            if (p.totalWeight == 0) amount = poolSize(epoch);
            else if (block.timestamp >= claimDeadline(epoch)) amount = poolSize(epoch) - p.claimed;
        }
        if (amount == 0) revert NotRollable(epoch);
        uint256 target = _currentEpoch();
        p.rolledOut = true;
        _pools[target].rolledIn += amount;
        emit PoolRolledOver(epoch, target, amount);
    }

    // ---------------------------------------------------------------- views

    function epochPool(uint256 epoch) external view returns (EpochPool memory) {
        return _pools[epoch];
    }

    function poolSize(uint256 epoch) public view returns (uint256) {
        EpochPool storage p = _pools[epoch];
        return p.funded + p.slashed + p.rolledIn;
    }

    function rewardWeight(uint256 epoch, address server) external view returns (uint256) {
        return _weights[epoch][server];
    }

    function hasClaimed(uint256 epoch, address server) external view returns (bool) {
        return _claimed[epoch][server];
    }

    /// @dev Servers share poolSize - verifierPot by weight (floor), verifiers verifierPot equally (floor): what
    /// is paid never exceeds the pool, and the dust stays until it is rolled over.
    function shareOf(uint256 epoch, address account) public view returns (uint256 share) {
        EpochPool storage p = _pools[epoch];
        uint256 total = p.totalWeight;
        if (total == 0) return 0;
        uint256 size = p.funded + p.slashed + p.rolledIn;
        uint256 verifiers = p.verifiers;
        uint256 pot = verifiers == 0 ? 0 : Math.mulDiv(size, VERIFIER_SHARE, ONE);
        share = Math.mulDiv(size - pot, _weights[epoch][account], total);
        if (pot > 0 && _paidVerifiers[epoch][account]) share += pot / verifiers;
    }

    /// @dev The same rule as in shareOf.
    function verifierPot(uint256 epoch) public view returns (uint256) {
        EpochPool storage p = _pools[epoch];
        if (p.totalWeight == 0 || p.verifiers == 0) return 0;
        return Math.mulDiv(poolSize(epoch), VERIFIER_SHARE, ONE);
    }

    function isPaidVerifier(uint256 epoch, address verifier) external view returns (bool) {
        return _paidVerifiers[epoch][verifier];
    }

    function claimDeadline(uint256 epoch) public view returns (uint256) {
        return schedule.windows(epoch).finalizeEnd + CLAIM_PERIOD;
    }

    function pendingRewards(address server, uint256[] calldata epochs) external view returns (uint256 amount) {
        for (uint256 i = 0; i < epochs.length; ++i) {
            uint256 epoch = epochs[i];
            if (_claimed[epoch][server] || _pools[epoch].rolledOut) continue;
            if (schedule.phase(epoch) != IEpochSchedule.Phase.Settled) continue;
            amount += shareOf(epoch, server);
        }
    }
}
