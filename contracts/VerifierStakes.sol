// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Bonds} from "./libraries/Bonds.sol";
import {Governed} from "./governance/Governed.sol";
import {IEpochSchedule} from "./interfaces/IEpochSchedule.sol";
import {IServerRegistry} from "./interfaces/IServerRegistry.sol";
import {IRewardPool} from "./interfaces/IRewardPool.sol";
import {IVerifierStakes} from "./interfaces/IVerifierStakes.sol";

/// @title VerifierStakes
/// @notice Verifiers' bonded and unbonding stake, slashable by the trust-scoring contract. See IVerifierStakes.
contract VerifierStakes is IVerifierStakes, Governed, ReentrancyGuard {
    /// @notice May slash: the trust-scoring contract.
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    uint256 private constant ONE = 1e18;

    /// @notice Where the unbonding period is read: one parameter for servers and verifiers.
    IServerRegistry public immutable registry;
    IRewardPool public immutable rewardPool;

    uint256 public totalBonded;
    uint256 public totalUnbonding;
    uint256 public totalSlashed;

    uint256 private constant MAX_ENDPOINT = 256;

    mapping(address verifier => Stake) private _stakes;
    mapping(address verifier => string endpoint) private _endpoints;
    mapping(address verifier => bool listed) private _listed;
    address[] private _announced;

    constructor(address governor, IEpochSchedule schedule_, IServerRegistry registry_, IRewardPool rewardPool_)
        Governed(governor, schedule_)
    {
        registry = registry_;
        rewardPool = rewardPool_;
    }

    /// @inheritdoc IVerifierStakes
    function stake() external payable whenNotPaused {
        if (msg.value == 0) revert ZeroAmount();
        Stake storage s = _stakes[msg.sender];
        s.bonded += msg.value;
        totalBonded += msg.value;
        emit VerifierStaked(msg.sender, msg.value, s.bonded);
    }

    /// @inheritdoc IVerifierStakes
    function announceEndpoint(string calldata endpoint) external whenNotPaused {
        if (bytes(endpoint).length > MAX_ENDPOINT) revert EndpointTooLong(bytes(endpoint).length, MAX_ENDPOINT);
        if (!_listed[msg.sender]) {
            _listed[msg.sender] = true;
            _announced.push(msg.sender);
        }
        _endpoints[msg.sender] = endpoint;
        emit VerifierEndpointAnnounced(msg.sender, endpoint);
    }

    /// @inheritdoc IVerifierStakes
    function requestUnstake(uint256 amount) external whenNotPaused {
        Stake storage s = _stakes[msg.sender];
        if (amount == 0) revert ZeroAmount();
        if (amount > s.bonded) revert AmountExceedsStake(amount, s.bonded);
        s.bonded -= amount;
        s.unbonding += amount;
        s.unlockTime = uint64(block.timestamp + registry.unbondingPeriod());
        totalBonded -= amount;
        totalUnbonding += amount;
        emit VerifierUnstakeRequested(msg.sender, amount, s.unbonding, s.unlockTime);
    }

    /// @inheritdoc IVerifierStakes
    function withdraw() external nonReentrant whenNotPaused {
        Stake storage s = _stakes[msg.sender];
        uint256 amount = s.unbonding;
        if (amount == 0) revert NothingToWithdraw();
        if (block.timestamp < s.unlockTime) revert StillUnbonding(s.unlockTime);
        s.unbonding = 0;
        totalUnbonding -= amount;
        emit VerifierWithdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @inheritdoc IVerifierStakes
    function slash(address verifier, uint256 epoch, uint256 fraction)
        external
        onlyRole(SLASHER_ROLE)
        nonReentrant
        whenNotPaused
        returns (uint256 amount)
    {
        if (fraction > ONE) revert ParameterOutOfBounds("fraction", fraction, 0, ONE);
        Stake storage s = _stakes[verifier];
        uint256 bonded = s.bonded;
        uint256 unbonding = s.unbonding;
        uint256 fromBonded;
        uint256 fromUnbonding;
        (amount, fromBonded, fromUnbonding) = Bonds.slashSplit(bonded, unbonding, fraction);

        s.bonded = bonded - fromBonded;
        s.unbonding = unbonding - fromUnbonding;
        s.totalSlashed += amount;
        s.timesSlashed += 1;
        totalBonded -= fromBonded;
        totalUnbonding -= fromUnbonding;
        totalSlashed += amount;
        emit VerifierSlashed(verifier, epoch, amount, s.bonded, s.unbonding);

        // The current epoch's pool: still open, so neither claimed from nor rolled over yet.
        if (amount > 0) rewardPool.depositSlashed{value: amount}(_currentEpoch(), verifier);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IVerifierStakes
    function endpointOf(address verifier) external view returns (string memory) {
        return _endpoints[verifier];
    }

    /// @inheritdoc IVerifierStakes
    function announcedVerifiers() external view returns (address[] memory) {
        return _announced;
    }

    /// @inheritdoc IVerifierStakes
    function bondedOf(address verifier) external view returns (uint256) {
        return _stakes[verifier].bonded;
    }

    function stakeOf(address verifier) external view returns (Stake memory) {
        return _stakes[verifier];
    }

    function unbondingPeriod() external view returns (uint256) {
        return registry.unbondingPeriod();
    }
}
