// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IVerifierStakes
/// @notice The stakes verifiers answer for their scores with. A verifier bonds ether (`stake`); TrustScoring lets
/// it commit scores only while it has at least `minVerifierStake` bonded. Unbonding (`requestUnstake`) lasts the
/// registry's `unbondingPeriod`, the same parameter as servers', which outlasts an epoch and all of its windows,
/// so a verifier that commits and then unstakes can still be slashed for that epoch; `withdraw` pays it out after.
/// The trust-scoring contract (SLASHER_ROLE) slashes a share of bonded plus unbonding stake for a commit without
/// a reveal or a reveal far from the median; the slashed ether goes to the reward pool of the current epoch.
/// @dev Invariant: the contract's balance == totalBonded + totalUnbonding (slashed ether leaves at once).
interface IVerifierStakes {
    /// @notice One verifier's stake, in wei.
    struct Stake {
        uint256 bonded; // counts for minVerifierStake; slashable
        uint256 unbonding; // slashable until unlockTime, then withdrawable
        uint256 totalSlashed;
        uint64 unlockTime; // when `unbonding` can be withdrawn
        uint32 timesSlashed;
    }

    event VerifierStaked(address indexed verifier, uint256 amount, uint256 bonded);
    event VerifierUnstakeRequested(address indexed verifier, uint256 amount, uint256 unbonding, uint256 unlockTime);
    event VerifierWithdrawn(address indexed verifier, uint256 amount);
    /// @notice `verifier` takes client-handed signed answers at `endpoint` (an http(s) URL; empty: none).
    event VerifierEndpointAnnounced(address indexed verifier, string endpoint);
    event VerifierSlashed(
        address indexed verifier, uint256 indexed epoch, uint256 amount, uint256 bonded, uint256 unbonding
    );

    error ZeroAmount();
    error AmountExceedsStake(uint256 amount, uint256 stake);
    error NothingToWithdraw();
    error StillUnbonding(uint256 unlockTime);
    error TransferFailed();
    error EndpointTooLong(uint256 length, uint256 max);

    /// @notice Bond msg.value more for msg.sender.
    /// Requirements: msg.value > 0; not paused. Emits VerifierStaked.
    function stake() external payable;

    /// @notice Move `amount` of msg.sender's bonded stake to unbonding, withdrawable after the unbonding period and
    /// slashable until then. A new request restarts the wait for all that is unbonding.
    /// Requirements: 0 < amount <= bonded; not paused. Emits VerifierUnstakeRequested.
    function requestUnstake(uint256 amount) external;

    /// @notice Pay msg.sender all of its unbonding stake once its unlock time has passed.
    /// Requirements: something unbonding and unlocked; not paused. Emits VerifierWithdrawn.
    function withdraw() external;

    /// @notice Slash `fraction` (18 decimals) of `verifier`'s bonded plus unbonding stake for misbehaving in
    /// `epoch`, bonded first; the ether goes to the reward pool of the current epoch (RewardPool.depositSlashed).
    /// Requirements: SLASHER_ROLE (the trust-scoring contract); fraction <= 1e18; not paused. Emits VerifierSlashed.
    function slash(address verifier, uint256 epoch, uint256 fraction) external returns (uint256 amount);

    /// @notice Announce where msg.sender takes the signed answers clients hand to verifiers (issue 14): clients
    /// read `announcedVerifiers` and post a sample of their answers to each. Any account may announce; clients
    /// post only to those with at least minVerifierStake bonded. An empty string withdraws the endpoint.
    /// Requirements: at most 256 bytes; not paused. Emits VerifierEndpointAnnounced.
    function announceEndpoint(string calldata endpoint) external;

    /// @notice The endpoint `verifier` announced last ("" for none).
    function endpointOf(address verifier) external view returns (string memory);

    /// @notice Every account that ever announced an endpoint, in order of first announcement.
    function announcedVerifiers() external view returns (address[] memory);

    /// @notice Bonded stake of `verifier` (what TrustScoring compares with minVerifierStake).
    function bondedOf(address verifier) external view returns (uint256);
    function stakeOf(address verifier) external view returns (Stake memory);
    /// @notice Seconds unstaked ether stays slashable: the registry's unbondingPeriod.
    function unbondingPeriod() external view returns (uint256);
    function totalBonded() external view returns (uint256);
    function totalUnbonding() external view returns (uint256);
    function totalSlashed() external view returns (uint256);
}
