// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {Governed} from "./governance/Governed.sol";
import {IEpochSchedule} from "./interfaces/IEpochSchedule.sol";
import {IServerRegistry} from "./interfaces/IServerRegistry.sol";
import {IRewardPool} from "./interfaces/IRewardPool.sol";
import {Bonds} from "./libraries/Bonds.sol";
import {LayerCounts} from "./libraries/LayerCounts.sol";

/// @title ServerRegistry
/// @notice Stake, layer spans and status of every server. See IServerRegistry.
/// @dev Per-layer coverage and max(l) are kept incrementally, so no state-changing call loops over servers;
/// the loops that remain are bounded by the model's layer count.
///
/// Two views of every server. The live record (status, endpoint, span) is what clients route by and changes at
/// once. The facts that scores and payments use are checkpointed per epoch: a change made during epoch c takes
/// effect for scoring from `schedule.nextFullEpoch()` (c + 1, or c at its first second), and leaving the active
/// set during c also marks c as not served in full. So an epoch's spans, its max(l) and who was active all
/// through it are fixed when its work period ends, whatever is called afterwards and in whatever order.
contract ServerRegistry is IServerRegistry, Governed, ReentrancyGuard {
    using LayerCounts for LayerCounts.Counts;
    using Checkpoints for Checkpoints.Trace224;

    /// @notice May slash and deactivate: the trust-scoring contract.
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    uint256 public constant MAX_MODEL_LAYERS = 1024;
    uint256 public constant MAX_ENDPOINT_LENGTH = 256;
    uint256 public constant MAX_WEIGHT = 100e18;
    uint256 public constant MAX_UNBONDING_PERIOD = 365 days;
    uint256 private constant ONE = 1e18;
    uint224 private constant ACTIVE_BIT = 1 << 32;
    /// @dev Where the bonded stake sits in a facts checkpoint (128 bits above the span and the active bit).
    uint256 private constant STAKE_SHIFT = 64;

    uint256 public immutable NUM_LAYERS;
    IRewardPool public immutable rewardPool;

    uint256 public minStake;
    uint256 public unbondingPeriod;
    uint256 public slashFraction;
    uint256 public totalBonded;
    uint256 public totalUnbonding;
    uint256 public maxActiveSpan;

    mapping(address => Server) private _servers;
    address[] private _serverList;
    LayerCounts.Counts private _coverage;
    LayerCounts.Counts private _spanCounts;
    /// @dev Per server, key = first epoch, value = stake << STAKE_SHIFT | ACTIVE_BIT | firstLayer << 16 | numLayers
    /// at that epoch's start.
    mapping(address server => Checkpoints.Trace224) private _facts;
    /// @dev Epochs during which the server left the active set, but the latest (kept in `Server.leftEpoch`).
    mapping(address server => mapping(uint256 epoch => bool)) private _leftDuring;
    /// @dev Per server, key = first epoch, value = weights << 8 | dtype declared for it (no entry: Float32, Full).
    mapping(address server => Checkpoints.Trace224) private _servings;
    /// @dev key = first epoch, value = max(l) at that epoch's start.
    Checkpoints.Trace224 private _maxSpans;

    constructor(
        address governor,
        IEpochSchedule schedule_,
        IRewardPool rewardPool_,
        uint256 numLayers,
        uint256 minStake_,
        uint256 unbondingPeriod_,
        uint256 slashFraction_
    ) Governed(governor, schedule_) {
        if (numLayers == 0 || numLayers > MAX_MODEL_LAYERS) revert InvalidSpan(0, 0, numLayers);
        NUM_LAYERS = numLayers;
        rewardPool = rewardPool_;
        _setMinStake(minStake_);
        _setUnbondingPeriod(unbondingPeriod_);
        _setSlashFraction(slashFraction_);
    }

    // ---------------------------------------------------------------- servers

    /// @inheritdoc IServerRegistry
    function register(string calldata endpoint, uint256 firstLayer, uint256 numLayers)
        external
        payable
        whenNotPaused
    {
        Server storage s = _servers[msg.sender];
        if (s.status != Status.None) revert AlreadyRegistered(msg.sender);
        if (msg.value < minStake) revert InsufficientStake(msg.value, minStake);
        _checkSpan(endpoint, firstLayer, numLayers);

        s.endpoint = endpoint;
        s.firstLayer = uint16(firstLayer);
        s.numLayers = uint16(numLayers);
        s.registeredEpoch = uint32(_currentEpoch());
        s.stake = uint128(msg.value);
        s.weight = ONE;
        totalBonded += msg.value;
        _serverList.push(msg.sender);

        emit ServerRegistered(msg.sender, endpoint, firstLayer, numLayers, msg.value);
        uint256 from = schedule.nextFullEpoch();
        uint256 current = _currentEpoch();
        if (from != current) {
            // Registered during the current epoch: its work there is committed and scored (fraud is slashed)
            // with the span it registered, but not paid, and its span does not count towards that epoch's max(l).
            _facts[msg.sender].push(uint32(current), uint224(firstLayer) << 16 | uint224(numLayers));
            emit FactsScheduled(msg.sender, current, false, firstLayer, numLayers);
        }
        // Paid from the first epoch it serves in full.
        _setStatus(msg.sender, s, Status.Active, from);
    }

    /// @inheritdoc IServerRegistry
    function addStake() external payable whenNotPaused {
        if (msg.value == 0) revert ZeroAmount();
        Server storage s = _registered(msg.sender);
        if (s.status == Status.Deactivated) revert ServerIsDeactivated(msg.sender);
        s.stake += uint128(msg.value);
        totalBonded += msg.value;
        emit StakeAdded(msg.sender, msg.value, s.stake);
        if (s.status == Status.Inactive && s.stake >= minStake) {
            // Paid again only from the next full epoch: it was inactive during part of this one.
            _setStatus(msg.sender, s, Status.Active, schedule.nextFullEpoch());
        } else {
            // Stake added counts from the next full epoch (epochStake)
            _scheduleFacts(msg.sender, s, schedule.nextFullEpoch());
        }
    }

    /// @inheritdoc IServerRegistry
    function updateServer(string calldata endpoint, uint256 firstLayer, uint256 numLayers) external whenNotPaused {
        Server storage s = _registered(msg.sender);
        if (s.status == Status.Deactivated) revert ServerIsDeactivated(msg.sender);
        _checkSpan(endpoint, firstLayer, numLayers);
        uint256 maxBefore = maxActiveSpan;
        bool active = s.status == Status.Active;
        if (active) _count(s, false);
        s.endpoint = endpoint;
        s.firstLayer = uint16(firstLayer);
        s.numLayers = uint16(numLayers);
        if (active) _count(s, true);
        emit ServerUpdated(msg.sender, endpoint, firstLayer, numLayers);
        // The move counts for scoring from the next full epoch: l_i of an epoch is its work period's span.
        uint256 next = schedule.nextFullEpoch();
        _scheduleFacts(msg.sender, s, next);
        if (maxActiveSpan != maxBefore) _scheduleMaxSpan(next);
    }

    /// @inheritdoc IServerRegistry
    function declareServing(Serving calldata serving) external whenNotPaused {
        Server storage s = _registered(msg.sender);
        if (s.status == Status.Deactivated) revert ServerIsDeactivated(msg.sender);
        uint256 current = _currentEpoch();
        // Keys only grow: a registration epoch's declarations all key `current`, every later one the next full
        // epoch, which is never before the current one.
        uint256 from = s.registeredEpoch == current ? current : schedule.nextFullEpoch();
        s.dtype = serving.dtype;
        s.weights = serving.weights;
        _servings[msg.sender].push(uint32(from), uint224(uint8(serving.weights)) << 8 | uint224(uint8(serving.dtype)));
        emit ServingDeclared(msg.sender, from, serving.dtype, serving.weights);
    }

    /// @inheritdoc IServerRegistry
    function requestUnstake(uint256 amount) external whenNotPaused {
        Server storage s = _registered(msg.sender);
        if (amount == 0) revert ZeroAmount();
        if (amount > s.stake) revert AmountExceedsStake(amount, s.stake);
        s.stake -= uint128(amount);
        s.unbonding += uint128(amount);
        s.unlockTime = uint64(block.timestamp + unbondingPeriod);
        totalBonded -= amount;
        totalUnbonding += amount;
        emit UnstakeRequested(msg.sender, amount, s.unbonding, s.unlockTime);
        if (s.status == Status.Active && s.stake < minStake) {
            _setStatus(msg.sender, s, Status.Inactive, _currentEpoch());
        } else if (s.status != Status.Deactivated) {
            // Stake removed counts for the current epoch already: epochStake takes the least of its start and end
            _scheduleFacts(msg.sender, s, schedule.nextFullEpoch());
        }
    }

    /// @inheritdoc IServerRegistry
    function withdraw() external nonReentrant whenNotPaused {
        Server storage s = _registered(msg.sender);
        uint256 amount = s.unbonding;
        if (amount == 0) revert NothingToWithdraw();
        if (block.timestamp < s.unlockTime) revert StillUnbonding(s.unlockTime);
        s.unbonding = 0;
        totalUnbonding -= amount;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @inheritdoc IServerRegistry
    function slash(address server, uint256 epoch)
        external
        onlyRole(SLASHER_ROLE)
        nonReentrant
        whenNotPaused
        returns (uint256 amount)
    {
        Server storage s = _registered(server);
        if (s.status == Status.Deactivated) revert ServerIsDeactivated(server);
        uint256 stake = s.stake;
        uint256 unbonding = s.unbonding;
        uint256 fromStake;
        uint256 fromUnbonding;
        (amount, fromStake, fromUnbonding) = Bonds.slashSplit(stake, unbonding, slashFraction);

        s.stake = uint128(stake - fromStake);
        s.unbonding = uint128(unbonding - fromUnbonding);
        s.timesSlashed += 1;
        s.totalSlashed += uint128(amount);
        totalBonded -= fromStake;
        totalUnbonding -= fromUnbonding;
        _setStatus(server, s, Status.Deactivated, epoch);
        emit Slashed(server, epoch, amount, s.stake, s.unbonding);

        if (amount > 0) rewardPool.depositSlashed{value: amount}(epoch, server);
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IServerRegistry
    function setWeight(address server, uint256 weight) external onlyRole(GOVERNOR_ROLE) {
        Server storage s = _registered(server);
        if (weight == 0 || weight > MAX_WEIGHT) revert ParameterOutOfBounds("weight", weight, 1, MAX_WEIGHT);
        s.weight = weight;
        emit WeightSet(server, weight);
    }

    /// @inheritdoc IServerRegistry
    function setMinStake(uint256 value) external onlyRole(GOVERNOR_ROLE) {
        _setMinStake(value);
    }

    /// @inheritdoc IServerRegistry
    function setUnbondingPeriod(uint256 value) external onlyRole(GOVERNOR_ROLE) {
        _setUnbondingPeriod(value);
    }

    /// @inheritdoc IServerRegistry
    function setSlashFraction(uint256 value) external onlyRole(GOVERNOR_ROLE) {
        _setSlashFraction(value);
    }

    function _setMinStake(uint256 value) private {
        _checkBounds("minStake", value, 1, type(uint128).max);
        minStake = value;
    }

    /// @dev Unbonding must outlast an epoch and all of its windows, so stake stays slashable for misbehaviour
    /// in the epoch during which its unbonding was requested.
    function _setUnbondingPeriod(uint256 value) private {
        uint256 floor = schedule.EPOCH_LENGTH() + schedule.settlementDelay() + 1;
        _checkBounds("unbondingPeriod", value, floor, MAX_UNBONDING_PERIOD);
        unbondingPeriod = value;
    }

    function _setSlashFraction(uint256 value) private {
        _checkBounds("slashFraction", value, 0, ONE);
        slashFraction = value;
    }

    // ---------------------------------------------------------------- views

    function getServer(address server) external view returns (Server memory) {
        return _servers[server];
    }

    /// @inheritdoc IServerRegistry
    /// @dev Finalize calls this once per server, so it reads as little as it can: the server's packed record
    /// (one slot), its weight and its checkpoints; the `_leftDuring` mapping only for a server that left the
    /// active set in more than one epoch.
    function scoringFacts(address server, uint256 epoch) external view returns (ScoringFacts memory f) {
        Server storage s = _servers[server];
        uint224 packed = _facts[server].upperLookupRecent(uint32(epoch));
        f.status = s.status;
        f.registeredEpoch = s.registeredEpoch;
        f.active = packed & ACTIVE_BIT != 0;
        if (f.active) {
            uint256 left = s.leftEpoch;
            // Left during the epoch; or deactivated in or before it (deactivation writes no checkpoint)
            if (left != 0 && (epoch + 1 == left || (f.status == Status.Deactivated && epoch + 1 > left))) {
                f.active = false;
            } else if (s.leftBefore && _leftDuring[server][epoch]) {
                f.active = false;
            }
        }
        f.firstLayer = uint16(packed >> 16);
        f.numLayers = uint16(packed);
        f.weight = s.weight;
        f.stake = _epochStake(_facts[server], packed, epoch);
    }

    /// @inheritdoc IServerRegistry
    function epochStake(address server, uint256 epoch) external view returns (uint256) {
        Checkpoints.Trace224 storage facts = _facts[server];
        return _epochStake(facts, facts.upperLookupRecent(uint32(epoch)), epoch);
    }

    /// @dev The least of the stake in `atStart` (the epoch's checkpoint) and in the next epoch's checkpoint, which
    /// holds every change made during the epoch.
    function _epochStake(Checkpoints.Trace224 storage facts, uint224 atStart, uint256 epoch)
        private
        view
        returns (uint256)
    {
        uint256 start = atStart >> STAKE_SHIFT;
        uint256 end = facts.upperLookupRecent(uint32(epoch + 1)) >> STAKE_SHIFT;
        return start < end ? start : end;
    }

    /// @inheritdoc IServerRegistry
    function servingOf(address server, uint256 epoch) external view returns (Serving memory serving) {
        uint224 packed = _servings[server].upperLookupRecent(uint32(epoch));
        serving.dtype = ComputeDtype(uint8(packed));
        serving.weights = WeightFormat(uint8(packed >> 8));
    }

    /// @inheritdoc IServerRegistry
    function maxSpanOf(uint256 epoch) external view returns (uint256) {
        return _maxSpans.upperLookupRecent(uint32(epoch));
    }

    function isActive(address server) external view returns (bool) {
        return _servers[server].status == Status.Active;
    }

    function serverCount() external view returns (uint256) {
        return _serverList.length;
    }

    function serverList() external view returns (address[] memory) {
        return _serverList;
    }

    function getServers(uint256 offset, uint256 limit)
        external
        view
        returns (address[] memory addrs, Server[] memory records)
    {
        uint256 total = _serverList.length;
        uint256 end = offset + limit > total ? total : offset + limit;
        uint256 n = end > offset ? end - offset : 0;
        addrs = new address[](n);
        records = new Server[](n);
        for (uint256 i = 0; i < n; ++i) {
            addrs[i] = _serverList[offset + i];
            records[i] = _servers[addrs[i]];
        }
    }

    function coverage() external view returns (uint256[] memory counts) {
        counts = new uint256[](NUM_LAYERS);
        for (uint256 i = 0; i < NUM_LAYERS; ++i) {
            counts[i] = _coverage.get(i);
        }
    }

    // ---------------------------------------------------------------- internals

    function _registered(address server) private view returns (Server storage s) {
        s = _servers[server];
        if (s.status == Status.None) revert NotRegistered(server);
    }

    function _checkSpan(string calldata endpoint, uint256 firstLayer, uint256 numLayers) private view {
        if (bytes(endpoint).length == 0 || bytes(endpoint).length > MAX_ENDPOINT_LENGTH) revert InvalidEndpoint();
        if (numLayers == 0 || firstLayer + numLayers > NUM_LAYERS) {
            revert InvalidSpan(firstLayer, numLayers, NUM_LAYERS);
        }
    }

    /// @dev The one place where status changes: it keeps coverage and max(l) in step with the Active set, and the
    /// epoch facts in step with both. `epoch` is the epoch reported in the event; on activation it is also the
    /// first epoch paid.
    function _setStatus(address server, Server storage s, Status to, uint256 epoch) private {
        Status from = s.status;
        uint256 maxBefore = maxActiveSpan;
        if (from == Status.Active) _count(s, false);
        if (to == Status.Active) {
            _count(s, true);
            s.activeSince = uint32(epoch);
        }
        s.status = to;
        emit StatusChanged(server, from, to, epoch);
        uint256 next = schedule.nextFullEpoch();
        if (to == Status.Deactivated) {
            // For good, so no checkpoint: scoringFacts reads the epoch from `leftEpoch` (this saves finalize a
            // checkpoint write per slashed server).
            _markLeft(server, s, _currentEpoch());
        } else {
            uint256 current = _currentEpoch();
            // Going inactive after the current epoch's first second: that epoch was not served in full.
            if (from == Status.Active && next != current) _markLeft(server, s, current);
            _scheduleFacts(server, s, next);
        }
        if (maxActiveSpan != maxBefore) _scheduleMaxSpan(next);
    }

    /// @dev Records that the server left the active set during `epoch`; an earlier such epoch moves to the mapping.
    function _markLeft(address server, Server storage s, uint256 epoch) private {
        uint32 left = uint32(epoch + 1);
        uint32 previous = s.leftEpoch;
        if (previous != 0 && previous != left) {
            _leftDuring[server][previous - 1] = true;
            s.leftBefore = true;
        }
        s.leftEpoch = left;
    }

    /// @dev Schedules the live record as the server's facts from epoch `from` on. Keys only grow: every call in one
    /// epoch writes the same key, the latest value winning.
    function _scheduleFacts(address server, Server storage s, uint256 from) private {
        uint224 packed = uint224(s.stake) << STAKE_SHIFT | (s.status == Status.Active ? ACTIVE_BIT : 0)
            | uint224(s.firstLayer) << 16 | s.numLayers;
        Checkpoints.Trace224 storage facts = _facts[server];
        if (facts.length() == 0 || facts.latest() != packed) {
            facts.push(uint32(from), packed);
            emit FactsScheduled(server, from, packed & ACTIVE_BIT != 0, s.firstLayer, s.numLayers);
        }
    }

    /// @dev Schedules the live max(l) as max(l) from epoch `from` on; called whenever it changed.
    function _scheduleMaxSpan(uint256 from) private {
        _maxSpans.push(uint32(from), uint224(maxActiveSpan));
        emit MaxSpanScheduled(from, maxActiveSpan);
    }

    function _checkCounts(uint256 overflowAt) private pure {
        if (overflowAt != LayerCounts.NONE) revert TooManyServers(overflowAt);
    }

    /// @dev Adds the server's span to (or removes it from) the per-layer coverage and the span-length counts,
    /// then restores max(l). The scan down from the old maximum is bounded by the model's layer count.
    function _count(Server storage s, bool add) private {
        uint256 span = s.numLayers;
        _checkCounts(_coverage.step(s.firstLayer, span, add));
        _checkCounts(_spanCounts.step(span, 1, add));
        if (add) {
            if (span > maxActiveSpan) maxActiveSpan = span;
        } else if (span == maxActiveSpan) {
            uint256 m = span;
            while (m > 0 && _spanCounts.get(m) == 0) --m;
            maxActiveSpan = m;
        }
    }
}
