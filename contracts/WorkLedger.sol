// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Governed} from "./governance/Governed.sol";
import {IEpochSchedule} from "./interfaces/IEpochSchedule.sol";
import {IServerRegistry} from "./interfaces/IServerRegistry.sol";
import {IWorkLedger} from "./interfaces/IWorkLedger.sol";

/// @title WorkLedger
/// @notice Work commitments and sampling seeds. See IWorkLedger.
contract WorkLedger is IWorkLedger, Governed {
    /// @notice Upper bound on one commitment's leaf count, so a reward weight can never overflow.
    uint256 public constant MAX_WORK_UNITS = 1 << 40;
    /// @notice May record an epoch's seed: the trust-scoring contract, which draws it from the verifiers' shares.
    bytes32 public constant SEEDER_ROLE = keccak256("SEEDER_ROLE");

    IServerRegistry public immutable registry;

    mapping(uint256 => mapping(address => Commitment)) private _commitments;
    mapping(uint256 => uint256) private _committedServers;
    mapping(uint256 => bytes32) private _seeds;

    constructor(address governor, IEpochSchedule schedule_, IServerRegistry registry_) Governed(governor, schedule_) {
        registry = registry_;
    }

    /// @inheritdoc IWorkLedger
    /// @dev Active and Inactive servers may commit (an Inactive one served while it was active); a deactivated
    /// or unknown one may not, nor one registered after the epoch's work period. The span recorded is the epoch's fact.
    function commitWork(uint256 epoch, bytes32 root, uint256 workUnits) external whenNotPaused {
        _requirePhase(epoch, IEpochSchedule.Phase.CommitWork);
        if (root == bytes32(0) || workUnits == 0) revert EmptyCommitment();
        if (workUnits > MAX_WORK_UNITS) revert TooManyWorkUnits(workUnits, MAX_WORK_UNITS);
        Commitment storage c = _commitments[epoch][msg.sender];
        if (c.root != bytes32(0)) revert WorkAlreadyCommitted(epoch, msg.sender);
        IServerRegistry.ScoringFacts memory f = registry.scoringFacts(msg.sender, epoch);
        if (
            f.numLayers == 0
                || (f.status != IServerRegistry.Status.Active && f.status != IServerRegistry.Status.Inactive)
        ) {
            revert ServerNotEligible(msg.sender);
        }

        c.root = root;
        c.workUnits = uint64(workUnits);
        c.firstLayer = f.firstLayer;
        c.numLayers = f.numLayers;
        c.committedAt = uint64(block.timestamp);
        _committedServers[epoch] += 1;
        emit WorkCommitted(epoch, msg.sender, root, workUnits, f.firstLayer, f.numLayers);
    }

    /// @inheritdoc IWorkLedger
    function recordSeed(uint256 epoch, bytes32 seed, address drawer) external onlyRole(SEEDER_ROLE) whenNotPaused {
        _requirePhase(epoch, IEpochSchedule.Phase.CommitScores);
        if (_seeds[epoch] != bytes32(0)) revert SeedAlreadyDrawn(epoch);
        if (seed == bytes32(0)) revert EmptySeed();
        _seeds[epoch] = seed;
        emit SeedDrawn(epoch, seed, drawer);
    }

    /// @inheritdoc IWorkLedger
    function declareLoss(uint256 epoch) external whenNotPaused {
        IEpochSchedule.Phase phase = schedule.phase(epoch);
        if (phase != IEpochSchedule.Phase.CommitWork && phase != IEpochSchedule.Phase.CommitScores) {
            revert IEpochSchedule.WrongPhase(epoch, IEpochSchedule.Phase.CommitWork, phase);
        }
        if (_seeds[epoch] != bytes32(0)) revert SeedAlreadyDrawn(epoch);
        Commitment storage c = _commitments[epoch][msg.sender];
        if (c.root == bytes32(0) || c.lost) revert NothingToDeclare(epoch, msg.sender);
        c.lost = true;
        emit LossDeclared(epoch, msg.sender);
    }

    function commitmentOf(uint256 epoch, address server) external view returns (Commitment memory) {
        return _commitments[epoch][server];
    }

    /// @inheritdoc IWorkLedger
    /// @dev Reads the commitment's second slot only (not the root): finalize calls this once per server.
    function workOf(uint256 epoch, address server) external view returns (uint256 workUnits, bool lost) {
        Commitment storage c = _commitments[epoch][server];
        return (c.workUnits, c.lost);
    }

    function sampleSeed(uint256 epoch) external view returns (bytes32) {
        return _seeds[epoch];
    }

    function committedServers(uint256 epoch) external view returns (uint256) {
        return _committedServers[epoch];
    }
}
