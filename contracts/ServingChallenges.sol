// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Governed} from "./governance/Governed.sol";
import {IEpochSchedule} from "./interfaces/IEpochSchedule.sol";
import {IServerRegistry} from "./interfaces/IServerRegistry.sol";
import {IServingChallenges} from "./interfaces/IServingChallenges.sol";
import {IWorkLedger} from "./interfaces/IWorkLedger.sol";
import {TaskTree} from "./libraries/TaskTree.sol";

/// @title ServingChallenges
/// @notice Challenges of server-signed answers against the server's committed root. See IServingChallenges.
/// @dev Invariant: the contract's balance == bonds of open challenges + bonds owed (`_owed`).
contract ServingChallenges is IServingChallenges, Governed, EIP712, ReentrancyGuard {
    /// @notice Longest response window a deployment may set.
    uint256 public constant MAX_RESPONSE_WINDOW = 30 days;

    IServerRegistry public immutable registry;
    IWorkLedger public immutable ledger;
    /// @notice Wei a challenger puts up; the server's if it answers (a challenge costs it a transaction).
    uint256 public immutable BOND;
    /// @notice Seconds a server has to answer a challenge.
    uint256 public immutable RESPONSE_WINDOW;

    uint256 public totalOpenBonds;
    uint256 public totalOwed;

    mapping(bytes32 id => Challenge) private _challenges;
    mapping(address account => uint256) private _owed;

    constructor(
        address governor,
        IEpochSchedule schedule_,
        IServerRegistry registry_,
        IWorkLedger ledger_,
        uint256 bond,
        uint256 responseWindow
    ) Governed(governor, schedule_) EIP712("eFedLLM Answer", "1") {
        if (responseWindow == 0 || responseWindow > MAX_RESPONSE_WINDOW) {
            revert ParameterOutOfBounds("responseWindow", responseWindow, 1, MAX_RESPONSE_WINDOW);
        }
        registry = registry_;
        ledger = ledger_;
        BOND = bond;
        RESPONSE_WINDOW = responseWindow;
    }

    /// @inheritdoc IServingChallenges
    function challenge(TaskTree.Answer calldata answer, bytes calldata signature)
        external
        payable
        whenNotPaused
        returns (bytes32 id)
    {
        if (msg.value != BOND) revert WrongBond(msg.value, BOND);
        address server = signerOf(answer, signature);
        if (registry.scoringFacts(server, answer.epoch).status == IServerRegistry.Status.None) {
            revert NotAServer(server);
        }
        uint256 epoch = answer.epoch;
        if (ledger.sampleSeed(epoch) == bytes32(0)) revert SeedNotDrawn(epoch);
        if (schedule.phase(epoch) == IEpochSchedule.Phase.Settled) revert EpochSettled(epoch);
        (, bool lost) = ledger.workOf(epoch, server);
        if (lost) revert EpochForfeited(epoch, server);

        bytes32 leaf = TaskTree.leaf(answer, server);
        id = keccak256(abi.encode(server, epoch, answer.index, leaf));
        Challenge storage c = _challenges[id];
        if (c.state != State.None) revert AlreadyChallenged(id);
        uint256 deadline = block.timestamp + RESPONSE_WINDOW;
        (c.server, c.challenger, c.deadline, c.state) = (server, msg.sender, uint64(deadline), State.Open);
        (c.epoch, c.index, c.leaf, c.bond) = (epoch, answer.index, leaf, msg.value);
        totalOpenBonds += msg.value;
        emit Challenged(id, server, epoch, answer.index, msg.sender, deadline);
    }

    /// @inheritdoc IServingChallenges
    function respond(bytes32 id, bytes32[] calldata siblings) external whenNotPaused {
        Challenge storage c = _open(id);
        if (block.timestamp > c.deadline) revert ResponseWindowOver(id, c.deadline);
        IWorkLedger.Commitment memory work = ledger.commitmentOf(c.epoch, c.server);
        if (work.root == bytes32(0) || !TaskTree.verify(work.root, c.leaf, c.index, work.workUnits, siblings)) {
            revert NotInCommittedRoot(id);
        }
        c.state = State.Answered;
        _release(c.bond, c.server);
        emit ChallengeAnswered(id, c.server, c.bond);
    }

    /// @inheritdoc IServingChallenges
    function enforce(bytes32 id) external whenNotPaused returns (uint256 slashed) {
        Challenge storage c = _open(id);
        if (block.timestamp <= c.deadline) revert ResponseWindowOpen(id, c.deadline);
        c.state = State.Upheld;
        _release(c.bond, c.challenger);
        address server = c.server;
        // Into the current epoch's pool: the challenged epoch may have settled, and its shares must not change.
        if (registry.scoringFacts(server, c.epoch).status != IServerRegistry.Status.Deactivated) {
            slashed = registry.slash(server, _currentEpoch());
        }
        emit ChallengeUpheld(id, server, slashed);
    }

    /// @inheritdoc IServingChallenges
    function withdrawBonds() external nonReentrant whenNotPaused returns (uint256 amount) {
        amount = _owed[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        _owed[msg.sender] = 0;
        totalOwed -= amount;
        emit BondWithdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    function _open(bytes32 id) private view returns (Challenge storage c) {
        c = _challenges[id];
        if (c.state != State.Open) revert NoOpenChallenge(id);
    }

    function _release(uint256 bond, address to) private {
        totalOpenBonds -= bond;
        totalOwed += bond;
        _owed[to] += bond;
    }

    // ---------------------------------------------------------------- views

    function answerDigest(TaskTree.Answer calldata answer) public view returns (bytes32) {
        return _hashTypedDataV4(TaskTree.structHash(answer));
    }

    function signerOf(TaskTree.Answer calldata answer, bytes calldata signature) public view returns (address) {
        return ECDSA.recover(answerDigest(answer), signature);
    }

    function challengeOf(bytes32 id) external view returns (Challenge memory) {
        return _challenges[id];
    }

    function bondsOf(address account) external view returns (uint256) {
        return _owed[account];
    }
}
