// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Governed} from "./governance/Governed.sol";
import {IEpochSchedule} from "./interfaces/IEpochSchedule.sol";
import {IPayments} from "./interfaces/IPayments.sol";
import {IServerRegistry} from "./interfaces/IServerRegistry.sol";

/// @title Payments
/// @notice Client deposits, cumulative client-signed receipts redeemed by servers once per epoch. See IPayments.
contract Payments is IPayments, Governed, EIP712, ReentrancyGuard {
    bytes32 public constant RECEIPT_TYPEHASH =
        keccak256("Receipt(address client,address server,uint256 epoch,uint256 amount)");

    IServerRegistry public immutable registry;
    /// @notice Seconds a requested withdrawal waits: at least an epoch plus its windows (checked at deployment).
    uint256 public immutable WITHDRAWAL_DELAY;

    uint256 public totalAvailable;
    uint256 public totalPending;
    uint256 public totalFees;

    mapping(address client => Account) private _accounts;
    mapping(address server => uint256) private _fees;
    mapping(address server => uint256) private _prices;
    mapping(uint256 epoch => mapping(address client => mapping(address server => uint256 amount))) private _redeemed;

    constructor(address governor, IEpochSchedule schedule_, IServerRegistry registry_, uint256 withdrawalDelay)
        Governed(governor, schedule_)
        EIP712("eFedLLM Receipt", "1")
    {
        uint256 least = schedule_.EPOCH_LENGTH() + schedule_.settlementDelay();
        if (withdrawalDelay <= least || withdrawalDelay > 365 days) {
            revert ParameterOutOfBounds("withdrawalDelay", withdrawalDelay, least + 1, 365 days);
        }
        registry = registry_;
        WITHDRAWAL_DELAY = withdrawalDelay;
    }

    // ---------------------------------------------------------------- clients

    /// @inheritdoc IPayments
    function deposit() external payable whenNotPaused {
        if (msg.value == 0) revert ZeroAmount();
        Account storage a = _accounts[msg.sender];
        a.available += msg.value;
        totalAvailable += msg.value;
        emit Deposited(msg.sender, msg.value, a.available);
    }

    /// @inheritdoc IPayments
    function requestWithdrawal(uint256 amount) external whenNotPaused {
        Account storage a = _accounts[msg.sender];
        if (amount == 0) revert ZeroAmount();
        if (amount > a.available) revert AmountExceedsBalance(amount, a.available);
        a.available -= amount;
        a.pending += amount;
        a.unlockTime = uint64(block.timestamp + WITHDRAWAL_DELAY);
        totalAvailable -= amount;
        totalPending += amount;
        emit WithdrawalRequested(msg.sender, amount, a.pending, a.unlockTime);
    }

    /// @inheritdoc IPayments
    function withdraw() external nonReentrant whenNotPaused returns (uint256 amount) {
        Account storage a = _accounts[msg.sender];
        amount = a.pending;
        if (amount == 0) revert NothingToWithdraw();
        if (block.timestamp < a.unlockTime) revert StillLocked(a.unlockTime);
        a.pending = 0;
        totalPending -= amount;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    // ---------------------------------------------------------------- servers

    /// @inheritdoc IPayments
    function redeem(Receipt calldata receipt, bytes calldata signature)
        external
        whenNotPaused
        returns (uint256 paid)
    {
        if (receipt.server != msg.sender) revert NotTheServer(receipt.server, msg.sender);
        if (schedule.phase(receipt.epoch) <= IEpochSchedule.Phase.Work) revert EpochNotOver(receipt.epoch);
        address signer = ECDSA.recover(receiptDigest(receipt), signature);
        if (signer != receipt.client) revert BadSignature(receipt.client, signer);
        if (receipt.amount == 0) revert ZeroAmount();
        mapping(address => uint256) storage done = _redeemed[receipt.epoch][receipt.client];
        if (done[msg.sender] != 0) revert AlreadyRedeemed(receipt.epoch, receipt.client, msg.sender);

        Account storage a = _accounts[receipt.client];
        uint256 fromAvailable = receipt.amount < a.available ? receipt.amount : a.available;
        uint256 rest = receipt.amount - fromAvailable;
        uint256 fromPending = rest < a.pending ? rest : a.pending;
        paid = fromAvailable + fromPending;
        if (paid == 0) revert ZeroAmount();
        a.available -= fromAvailable;
        a.pending -= fromPending;
        totalAvailable -= fromAvailable;
        totalPending -= fromPending;
        done[msg.sender] = receipt.amount;
        _fees[msg.sender] += paid;
        totalFees += paid;
        emit Redeemed(msg.sender, receipt.client, receipt.epoch, receipt.amount, paid);
    }

    /// @inheritdoc IPayments
    function withdrawFees() external nonReentrant whenNotPaused returns (uint256 amount) {
        amount = _fees[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        _fees[msg.sender] = 0;
        totalFees -= amount;
        emit FeesWithdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }

    /// @inheritdoc IPayments
    function announcePrice(uint256 pricePerTokenLayer) external whenNotPaused {
        if (registry.scoringFacts(msg.sender, 0).status == IServerRegistry.Status.None) revert NotAServer(msg.sender);
        _prices[msg.sender] = pricePerTokenLayer;
        emit PriceAnnounced(msg.sender, pricePerTokenLayer);
    }

    // ---------------------------------------------------------------- views

    function receiptDigest(Receipt calldata receipt) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(RECEIPT_TYPEHASH, receipt)));
    }

    function accountOf(address client) external view returns (Account memory) {
        return _accounts[client];
    }

    function feesOf(address server) external view returns (uint256) {
        return _fees[server];
    }

    function priceOf(address server) external view returns (uint256) {
        return _prices[server];
    }

    function redeemed(uint256 epoch, address client, address server) external view returns (uint256) {
        return _redeemed[epoch][client][server];
    }
}
