// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IPayments
/// @notice Clients pay servers for the work they asked for, like a unidirectional payment channel per (client,
/// server, epoch): a client deposits (`deposit`), and as it is served it countersigns one cumulative receipt per
/// server and epoch (EIP-712 `Receipt{client, server, epoch, amount}`: everything it owes that server for that
/// epoch so far; each new receipt supersedes the last, so a step costs at most one signature and nothing on chain).
/// Once the epoch's work period is over the server redeems the latest receipt, once (`redeem`), and its fees wait
/// for it to pull them (`withdrawFees`). A client leaves with `requestWithdrawal`, then `withdraw` after
/// `WITHDRAWAL_DELAY`, which outlasts an epoch and its windows, so that every receipt it signed can still be redeemed
/// from what it had deposited: a pending withdrawal is drawn on after the available balance.
/// Servers announce a price per token-layer (`announcePrice`), which clients weigh with speed and trust.
/// @dev Invariant: the contract's balance == sum of clients' available + pending + servers' unwithdrawn fees.
interface IPayments {
    struct Receipt {
        address client;
        address server;
        uint256 epoch;
        uint256 amount; // cumulative wei owed for the epoch
    }

    struct Account {
        uint256 available; // redeemable, and withdrawable after a request
        uint256 pending; // requested for withdrawal; still redeemable until withdrawn
        uint64 unlockTime; // when `pending` can be withdrawn
    }

    event Deposited(address indexed client, uint256 amount, uint256 available);
    event WithdrawalRequested(address indexed client, uint256 amount, uint256 pending, uint256 unlockTime);
    event Withdrawn(address indexed client, uint256 amount);
    event Redeemed(
        address indexed server, address indexed client, uint256 indexed epoch, uint256 amount, uint256 paid
    );
    event FeesWithdrawn(address indexed server, uint256 amount);
    event PriceAnnounced(address indexed server, uint256 pricePerTokenLayer);

    error ZeroAmount();
    error AmountExceedsBalance(uint256 amount, uint256 available);
    error NothingToWithdraw();
    error StillLocked(uint256 unlockTime);
    error TransferFailed();
    error NotTheServer(address server, address sender);
    error BadSignature(address client, address signer);
    error EpochNotOver(uint256 epoch);
    error AlreadyRedeemed(uint256 epoch, address client, address server);
    error NotAServer(address server);

    function deposit() external payable;
    function requestWithdrawal(uint256 amount) external;
    function withdraw() external returns (uint256 amount);

    /// @notice Redeem `receipt` (msg.sender is its server), signed by its client, once its epoch's work period is
    /// over; pays min(amount, what the client still has). Once per (epoch, client, server).
    function redeem(Receipt calldata receipt, bytes calldata signature) external returns (uint256 paid);
    function withdrawFees() external returns (uint256 amount);
    /// @notice Announce the caller's price in wei per token and layer (a registered server).
    function announcePrice(uint256 pricePerTokenLayer) external;

    /// @notice The EIP-712 digest a client signs (domain: name "eFedLLM Receipt", version "1", this chain, this
    /// contract).
    function receiptDigest(Receipt calldata receipt) external view returns (bytes32);
    function accountOf(address client) external view returns (Account memory);
    function feesOf(address server) external view returns (uint256);
    function priceOf(address server) external view returns (uint256);
    function redeemed(uint256 epoch, address client, address server) external view returns (uint256 amount);
    function WITHDRAWAL_DELAY() external view returns (uint256);
}
