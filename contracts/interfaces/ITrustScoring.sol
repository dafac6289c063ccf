// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title ITrustScoring
/// @notice Verifiers' accuracies in, trust scores and consequences out (paper eq. 3 and 4).
/// Each verifier commits `keccak256(abi.encode(verifier, epoch, servers, accuracies, salt))` and later reveals;
/// unrevealed commits count for nothing. `finalize` takes, per server, the median of the revealed accuracies
/// (when at least `minVerifiers` revealed one), computes S_i = acc_i * l_i / max(l) * w_i (eq. 3, the reward
/// weight), keeps and pays servers that pass the deployment's slashing rule, and slashes and deactivates the
/// others unless they registered less than `immunityEpochs` ago. l_i and max(l) are facts of the epoch's work
/// period (IServerRegistry.scoringFacts, maxSpanOf).
/// Verifiers answer for their scores: committing needs `minVerifierStake` bonded in VerifierStakes. A verifier loses
/// `verifierSlashFraction` of its stake (at most once per epoch) and the epoch's verifier pay (IRewardPool) when
/// it committed scores and never revealed them (`penalizeNoReveal`, anyone, once reveals are closed), withheld a
/// seed share (`penalizeSeedWithheld`), or revealed an accuracy more than κ (`kappa`) from a server's median (found
/// and slashed by `finalize` itself, so the verifiers paid are fixed once the epoch settles).
/// The sampling seed: during the work period or the CommitWork window (before commitments close) staked verifiers
/// commit hashes of random salts (`commitSeed`); in the CommitScores window they reveal them (`revealSeed`), and
/// `drawSeed` (anyone) records keccak(XOR of the revealed salts) once every share is revealed, or from
/// `seedReadyAt` on with the shares revealed by then. Nobody knows the seed before the last share is revealed, so a
/// server cannot choose its commitment for it; a colluding verifier can only withhold its share (one bit of choice
/// per colluder, for its penalty).
/// @dev All fractions are 18-decimal fixed point (1e18 = 1.0). S_i is capped at 1.0 (the paper's bound).
/// The paper's eq. 4 (S_i < θ slashes) slashes an honest server with a short span: with θ = 0.5 and w_i = 1, a
/// server with fewer than half the layers of the longest span fails even at acc = 1. The default rule,
/// SlashingRule.Accuracy, slashes on acc_i < θ instead; SlashingRule.TrustScore is the paper's rule.
interface ITrustScoring {
    enum Outcome {
        None, // not finalized
        Passed, // passed the slashing rule (acc or S >= θ): paid S_i x work if active all epoch and it committed work
        Slashed, // failed the rule: slashed and deactivated
        Immune, // failed the rule during the immunity period: neither slashed nor paid
        Failed, // failed the rule, already deactivated: nothing more happens
        NoQuorum, // fewer than minVerifiers revealed: not scored, not slashed, not paid
        Forfeited // the server declared its records of the epoch lost (WorkLedger.declareLoss): not paid, not slashed
    }

    /// @notice What a failing score is compared with: Accuracy (acc_i < θ slashes; the default, which never
    /// slashes an honest server for its span) or TrustScore (S_i < θ slashes: the paper's eq. 4).
    enum SlashingRule {
        Accuracy,
        TrustScore
    }

    /// @notice How a passing server's share of an epoch's pool is weighted (what it earns beyond its clients' fees):
    /// Work (S_i x work units: the paper's; work a server sends itself raises its share, so self-dealing pays) or
    /// Stake (S_i x the stake it held through the epoch, IServerRegistry.epochStake, whether or not it served, as
    /// Livepeer splits inflation over its active set: work earns fees from the clients who asked for it, and work a
    /// server pays for itself earns it nothing more, not even its place in the split).
    enum RewardRule {
        Work,
        Stake
    }

    /// @notice The deployment's rules (a struct: the constructor's arguments fit the stack).
    struct Rules {
        SlashingRule slashing;
        RewardRule reward;
    }

    /// @notice The verifier parameters of the constructor (a struct: the constructor's arguments fit the stack).
    struct VerifierRules {
        uint256 minStake; // least bonded verifier stake to commit scores, wei
        uint256 slashFraction; // share of the verifier's stake slashed per penalty, 18 decimals
        uint256 kappa; // largest |acc - median| not penalized, 18 decimals
    }

    /// @notice The result of finalizing one server for one epoch.
    struct Score {
        uint64 acc; // median accuracy
        uint64 score; // S_i
        uint16 numLayers; // l_i used
        uint16 maxLayers; // max(l) used
        uint8 verifiers; // number of revealed accuracies
        Outcome outcome;
    }

    event ScoresCommitted(uint256 indexed epoch, address indexed verifier, bytes32 commitment);
    event ScoresRevealed(
        uint256 indexed epoch, address indexed verifier, address[] servers, uint256[] accuracies, bytes32 salt
    );
    event ServerScored(
        uint256 indexed epoch,
        address indexed server,
        uint256 acc,
        uint256 score,
        uint256 numLayers,
        uint256 maxLayers,
        Outcome outcome,
        uint256 rewardWeight
    );

    event SeedShareCommitted(uint256 indexed epoch, address indexed verifier, bytes32 commitment);
    event SeedShareRevealed(uint256 indexed epoch, address indexed verifier, bytes32 salt);
    event NoRevealPenalized(uint256 indexed epoch, address indexed verifier, uint256 amount);
    event SeedWithheldPenalized(uint256 indexed epoch, address indexed verifier, uint256 amount);
    event DeviationPenalized(
        uint256 indexed epoch,
        address indexed verifier,
        address indexed server,
        uint256 accuracy,
        uint256 median,
        uint256 amount
    );

    error ScoresAlreadyCommitted(uint256 epoch, address verifier);
    error TooManyVerifiers(uint256 epoch);
    error NoCommitment(uint256 epoch, address verifier);
    error ScoresAlreadyRevealed(uint256 epoch, address verifier);
    error CommitmentMismatch(uint256 epoch, address verifier);
    error LengthMismatch(uint256 servers, uint256 accuracies);
    error EmptyReveal();
    error AccuracyOutOfRange(address server, uint256 accuracy);
    error ServersNotSorted(uint256 index);
    error UnknownServer(address server);
    error VerifierStakeTooLow(address verifier, uint256 bonded, uint256 minimum);
    error AlreadyPenalized(uint256 epoch, address verifier);
    error ScoresWereRevealed(uint256 epoch, address verifier);
    error SeedShareAlreadyCommitted(uint256 epoch, address verifier);
    error NoSeedShare(uint256 epoch, address verifier);
    error SeedShareAlreadyRevealed(uint256 epoch, address verifier);
    error SeedShareWasRevealed(uint256 epoch, address verifier);
    error SeedNotReady(uint256 epoch, uint256 revealed, uint256 committed, uint256 readyAt);
    error SeedNotDrawn(uint256 epoch);

    /// @notice Commit `seedShareHash(msg.sender, epoch, salt)` for a random salt (VERIFIER_ROLE, at least
    /// `minVerifierStake` bonded; during the epoch's Work or CommitWork phase, before commitments close).
    function commitSeed(uint256 epoch, bytes32 commitment) external;

    /// @notice Reveal the salt of the caller's seed share (CommitScores window, before the seed is drawn).
    function revealSeed(uint256 epoch, bytes32 salt) external;

    /// @notice Draw the sampling seed of `epoch` into the WorkLedger (anyone, CommitScores window, once): from the
    /// revealed seed shares once all are revealed or `seedReadyAt(epoch)` has passed; from the block's randomness
    /// when no share was revealed. Reverts SeedNotReady before that.
    function drawSeed(uint256 epoch) external returns (bytes32 seed);

    /// @notice When `drawSeed` stops waiting for unrevealed shares: a quarter into the CommitScores window.
    function seedReadyAt(uint256 epoch) external view returns (uint256);

    /// @notice Commit the hash of a verifier's accuracies for `epoch` (VERIFIER_ROLE, CommitScores window, at
    /// least `minVerifierStake` bonded in VerifierStakes).
    function commitScores(uint256 epoch, bytes32 commitment) external;

    /// @notice Reveal accuracies (each in [0, 1e18]) for servers listed in strictly ascending address order,
    /// with the salt of the commitment (RevealScores window).
    function revealScores(uint256 epoch, address[] calldata servers, uint256[] calldata accuracies, bytes32 salt)
        external;

    /// @notice Apply eq. 3 and the slashing rule to `servers` for `epoch` (Finalize window, anyone). A server
    /// finalized already is skipped, so overlapping batches cannot block each other, and so is a server that
    /// registered after the epoch's work period. Every input is a fact of the epoch, so neither the order of servers
    /// and batches nor anything called after the work period changes a score.
    function finalize(uint256 epoch, address[] calldata servers) external;

    /// @notice Slash `verifierSlashFraction` of the stake of `verifier`, which committed scores for `epoch` and
    /// never revealed them (anyone, from the epoch's Finalize window on).
    /// Requirements: committed, not revealed, not penalized for `epoch` yet. Emits NoRevealPenalized.
    function penalizeNoReveal(uint256 epoch, address verifier) external returns (uint256 amount);

    /// @notice Slash `verifierSlashFraction` of the stake of `verifier`, which committed a seed share for `epoch`
    /// and did not reveal it before the seed was drawn (anyone, once the seed is drawn). Emits SeedWithheldPenalized.
    function penalizeSeedWithheld(uint256 epoch, address verifier) external returns (uint256 amount);

    function setTheta(uint256 value) external;
    function setMinVerifiers(uint256 value) external;
    function setImmunityEpochs(uint256 value) external;
    function setMinVerifierStake(uint256 value) external;
    function setVerifierSlashFraction(uint256 value) external;
    function setKappa(uint256 value) external;

    /// @notice The commitment of a seed share: keccak256(abi.encode(verifier, epoch, salt)).
    function seedShareHash(address verifier, uint256 epoch, bytes32 salt) external pure returns (bytes32);
    /// @notice How many seed shares of `epoch` were committed and revealed.
    function seedShares(uint256 epoch) external view returns (uint256 committed, uint256 revealed);
    function seedShareOf(uint256 epoch, address verifier) external view returns (bytes32 commitment, bool revealed);

    /// @notice The commitment a verifier must post; verifiers compute it with this view or off chain.
    function scoresHash(
        address verifier,
        uint256 epoch,
        address[] calldata servers,
        uint256[] calldata accuracies,
        bytes32 salt
    ) external pure returns (bytes32);

    function theta() external view returns (uint256);
    function minVerifiers() external view returns (uint256);
    function immunityEpochs() external view returns (uint256);
    function minVerifierStake() external view returns (uint256);
    function verifierSlashFraction() external view returns (uint256);
    function kappa() external view returns (uint256);
    function SLASHING_RULE() external view returns (SlashingRule);
    function REWARD_RULE() external view returns (RewardRule);
    function scoreOf(uint256 epoch, address server) external view returns (Score memory);
    /// @notice The last epoch in which `server` was finalized with a score, and that score.
    function lastScore(address server) external view returns (uint256 epoch, Score memory);
    function revealedAccuracies(uint256 epoch, address server) external view returns (uint64[] memory);
    function commitmentOf(uint256 epoch, address verifier) external view returns (bytes32 commitment, bool revealed);
    /// @notice Whether `verifier` was penalized for `epoch` already.
    function isPenalized(uint256 epoch, address verifier) external view returns (bool);
}
