// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title IServerRegistry
/// @notice Servers (GPU providers) stake, register a contiguous span of model layers and an HTTP endpoint,
/// move to other layers, unbond and withdraw. Unbonding stake stays slashable. The trust-scoring contract
/// (SLASHER_ROLE) slashes and deactivates servers whose trust score fell below θ; slashed stake goes to the
/// reward pool of the epoch being finalized. A server is identified by the address that registered it.
interface IServerRegistry {
    /// @notice Active: bonded stake >= minStake and not deactivated; routed to and paid.
    /// Inactive: bonded stake fell below minStake; not routed to or paid until topped up.
    /// Deactivated: slashed for a trust score below θ; can only unbond and withdraw what is left.
    enum Status {
        None,
        Active,
        Inactive,
        Deactivated
    }

    /// @notice The precision a server computes in (GPU providers serve bfloat16 or float16). Verifiers recompute an
    /// opened step in the declared dtype and bound the difference per configuration (efedllm/verifier/rules.py).
    enum ComputeDtype {
        Float32,
        BFloat16,
        Float16
    }

    /// @notice How the server holds its weights: as the model ships them, or int8 weight-only with one scale per
    /// output channel, computed from the float weights by a rule every verifier reproduces bit for bit
    /// (efedllm/model/quantize.py).
    enum WeightFormat {
        Full,
        Int8
    }

    /// @notice A server's declared serving configuration; a server that never declared one serves Float32, Full.
    struct Serving {
        ComputeDtype dtype;
        WeightFormat weights;
    }

    /// @notice A server's record.
    /// @param activeSince First epoch from which the server has been continuously active (paid epochs start here).
    /// @param weight The per-server weight w_i of eq. 3, 18 decimals (1e18 = 1.0).
    /// @param leftEpoch 1 + the last epoch during which the server left the active set (0: never), so that epoch is
    /// not paid; for a deactivated server, no later one either. Packed with the status so that scoring reads it
    /// for free. @param leftBefore It left during an earlier epoch too (looked up per epoch).
    /// @param dtype @param weights The serving configuration declared last (what it serves now; verifiers check an
    /// epoch's work against `servingOf(server, epoch)`).
    struct Server {
        string endpoint;
        uint16 firstLayer;
        uint16 numLayers;
        Status status;
        uint32 registeredEpoch;
        uint32 activeSince;
        uint32 timesSlashed;
        uint64 unlockTime;
        uint32 leftEpoch;
        bool leftBefore;
        ComputeDtype dtype;
        WeightFormat weights;
        uint128 stake;
        uint128 unbonding;
        uint128 totalSlashed;
        uint256 weight;
    }

    /// @notice What scoring and payment of one epoch need about a server: facts of the epoch's work period,
    /// which no later call can change, next to the live status and weight.
    /// @param status The live status (whether it can still be slashed).
    /// @param active Active for the whole work period of the epoch: active at its start and never inactive or
    /// deactivated during it. Only such servers are paid for the epoch.
    /// @param firstLayer First layer of the span in effect during the epoch (0 when not registered by its end).
    /// @param numLayers l_i: length of the span in effect during the epoch: the span at its start, or for a server
    /// registered during it the span it registered with (it is scored, and slashable, but not paid); 0 when not
    /// registered by the epoch's end.
    struct ScoringFacts {
        Status status;
        uint32 registeredEpoch;
        bool active;
        uint16 firstLayer;
        uint16 numLayers;
        uint256 weight;
        uint256 stake; // epochStake: the bonded stake held through all of the epoch
    }

    event ServerRegistered(address indexed server, string endpoint, uint256 firstLayer, uint256 numLayers, uint256 stake);
    event ServerUpdated(address indexed server, string endpoint, uint256 firstLayer, uint256 numLayers);
    event StakeAdded(address indexed server, uint256 amount, uint256 stake);
    event UnstakeRequested(address indexed server, uint256 amount, uint256 unbonding, uint256 unlockTime);
    event Withdrawn(address indexed server, uint256 amount);
    event StatusChanged(address indexed server, Status from, Status to, uint256 epoch);
    event Slashed(address indexed server, uint256 indexed epoch, uint256 amount, uint256 stakeLeft, uint256 unbondingLeft);
    event WeightSet(address indexed server, uint256 weight);
    /// @notice From `fromEpoch` on (until the next such event), the server's span is this one and it is active
    /// (or not) for scoring and pay. Changes made during an epoch take effect at the next epoch boundary.
    event FactsScheduled(
        address indexed server, uint256 indexed fromEpoch, bool active, uint256 firstLayer, uint256 numLayers
    );
    /// @notice From `fromEpoch` on (until the next such event) the server serves, and is verified, in this
    /// configuration.
    event ServingDeclared(address indexed server, uint256 indexed fromEpoch, ComputeDtype dtype, WeightFormat weights);
    /// @notice max(l) from `fromEpoch` on: the longest span among servers active at that epoch's start.
    event MaxSpanScheduled(uint256 indexed fromEpoch, uint256 maxSpan);

    error AlreadyRegistered(address server);
    error NotRegistered(address server);
    error ServerIsDeactivated(address server);
    error InsufficientStake(uint256 stake, uint256 minStake);
    error InvalidSpan(uint256 firstLayer, uint256 numLayers, uint256 modelLayers);
    error InvalidEndpoint();
    error ZeroAmount();
    error AmountExceedsStake(uint256 amount, uint256 stake);
    error NothingToWithdraw();
    error StillUnbonding(uint256 unlockTime);
    error TransferFailed();
    /// @notice More than 65535 active servers would cover one layer (or share one span length).
    error TooManyServers(uint256 index);

    /// @notice Register msg.sender as a server for layers [firstLayer, firstLayer + numLayers) at `endpoint`,
    /// staking msg.value (at least minStake).
    function register(string calldata endpoint, uint256 firstLayer, uint256 numLayers) external payable;

    /// @notice Add msg.value to the caller's bonded stake; reactivates an Inactive server once at minStake.
    function addStake() external payable;

    /// @notice Move the caller to another endpoint or span (e.g. to cover layers freed by a deactivation).
    function updateServer(string calldata endpoint, uint256 firstLayer, uint256 numLayers) external;

    /// @notice Declare the precision and weight format the caller serves in. It holds from the next full epoch
    /// (as a span move does), so an epoch's work is always checked against the configuration in effect all
    /// through its work period; during the server's registration epoch (scored and slashable, not paid) it holds
    /// from that epoch, so a server can register and declare before it serves.
    function declareServing(Serving calldata serving) external;

    /// @notice Move `amount` of bonded stake to unbonding; withdrawable after unbondingPeriod, slashable until then.
    /// Requesting again restarts the unbonding clock for the whole unbonding amount.
    function requestUnstake(uint256 amount) external;

    /// @notice Pay the caller's unbonded stake once its unlock time has passed.
    function withdraw() external;

    /// @notice Slash `slashFraction` of the server's bonded plus unbonding stake and deactivate it. The slashed
    /// amount funds the reward pool of `epoch`. Only SLASHER_ROLE (the trust-scoring contract).
    /// @return amount The wei slashed.
    function slash(address server, uint256 epoch) external returns (uint256 amount);

    /// @notice Set the per-server weight w_i of eq. 3 (governor), in (0, MAX_WEIGHT].
    function setWeight(address server, uint256 weight) external;
    function setMinStake(uint256 value) external;
    function setUnbondingPeriod(uint256 value) external;
    function setSlashFraction(uint256 value) external;

    /// @notice Number of transformer layers of the model this deployment serves.
    function NUM_LAYERS() external view returns (uint256);
    function minStake() external view returns (uint256);
    function unbondingPeriod() external view returns (uint256);
    /// @notice Share of stake slashed on deactivation, 18 decimals.
    function slashFraction() external view returns (uint256);
    function totalBonded() external view returns (uint256);
    function totalUnbonding() external view returns (uint256);

    function getServer(address server) external view returns (Server memory);
    /// @notice The bonded stake `server` had through all of `epoch`: the least of its stake at the epoch's start
    /// and at its end (stake added during an epoch counts from the next; stake removed counts at once), a fact of
    /// the work period that no later call changes. The stake-weighted reward rule pays by it.
    function epochStake(address server, uint256 epoch) external view returns (uint256);
    /// @notice What the scorer and the work ledger need about `server` for `epoch`, without copying the endpoint
    /// string: the epoch's facts (span, active all epoch) and the live status and weight.
    function scoringFacts(address server, uint256 epoch) external view returns (ScoringFacts memory);
    /// @notice The serving configuration `server` declared for `epoch` (Float32, Full when it never declared one),
    /// a fact that no call after the epoch's work period can change.
    function servingOf(address server, uint256 epoch) external view returns (Serving memory);
    /// @notice max(l) of `epoch`: the longest span among servers active at the start of its work period, a fact
    /// that registrations, span moves and exits after that start cannot change.
    function maxSpanOf(uint256 epoch) external view returns (uint256);
    function isActive(address server) external view returns (bool);
    function serverCount() external view returns (uint256);
    /// @notice Every registered server's address, in registration order.
    function serverList() external view returns (address[] memory);
    /// @notice A page of servers with their records, for dashboards.
    function getServers(uint256 offset, uint256 limit)
        external
        view
        returns (address[] memory addrs, Server[] memory records);
    /// @notice Number of active servers covering each layer, index = layer.
    function coverage() external view returns (uint256[] memory);
    /// @notice The longest span among servers active now (0 when none is): max(l) of the next full epoch if
    /// nothing changes before it starts. Scores use maxSpanOf(epoch).
    function maxActiveSpan() external view returns (uint256);
}
