// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Governed} from "./governance/Governed.sol";
import {IEpochSchedule} from "./interfaces/IEpochSchedule.sol";
import {IServerRegistry} from "./interfaces/IServerRegistry.sol";
import {IWorkLedger} from "./interfaces/IWorkLedger.sol";
import {IRewardPool} from "./interfaces/IRewardPool.sol";
import {ITrustScoring} from "./interfaces/ITrustScoring.sol";
import {IVerifierStakes} from "./interfaces/IVerifierStakes.sol";
import {Median} from "./libraries/Median.sol";

/// @title TrustScoring
/// @notice Verifier commit and reveal, then eq. 3 and eq. 4 per server, and the penalties of verifiers that
/// committed without revealing or revealed far from the median. See ITrustScoring.
contract TrustScoring is ITrustScoring, Governed {
    /// @notice Verifiers; servers answer openings only to holders of this role.
    bytes32 public constant VERIFIER_ROLE = keccak256("VERIFIER_ROLE");
    /// @notice At most this many verifiers commit per epoch, which bounds the median's cost per server.
    uint256 public constant MAX_VERIFIERS = 32;
    uint256 public constant MAX_IMMUNITY_EPOCHS = 1000;
    uint256 private constant ONE = 1e18;

    IServerRegistry public immutable registry;
    IWorkLedger public immutable ledger;
    IRewardPool public immutable rewardPool;
    IVerifierStakes public immutable verifierStakes;

    /// @notice What decides slashing (eq. 3 always decides pay): the median accuracy or the paper's S_i.
    SlashingRule public immutable SLASHING_RULE;
    /// @notice How a passing server's pool share is weighted: S_i x work units (the paper's) or S_i x epoch stake.
    RewardRule public immutable REWARD_RULE;

    uint256 public theta;
    uint256 public minVerifiers;
    uint256 public immunityEpochs;
    uint256 public minVerifierStake;
    uint256 public verifierSlashFraction;
    uint256 public kappa;

    struct VerifierCommit {
        bytes32 commitment;
        bytes32 seedCommitment;
        bool committed; // not `commitment != 0`: a zero hash must use up the verifier's one commitment too
        bool revealed;
        bool penalized; // at most one penalty per (epoch, verifier)
        bool seedCommitted;
        bool seedRevealed;
        uint8 index; // rank of its score commitment in the epoch: how finalize finds it among a server's reveals
    }

    /// @dev The seed shares of one epoch: how many were committed and revealed, and the XOR of the revealed salts.
    struct SeedShares {
        uint32 committed;
        uint32 revealed;
        bytes32 mix;
    }

    mapping(uint256 => mapping(address => VerifierCommit)) private _commits;
    mapping(uint256 => uint256) private _committers;
    mapping(uint256 epoch => mapping(uint256 index => address verifier)) private _verifierAt;
    /// @dev Per server, one entry per reveal: accuracy << 8 | the verifier's index (3 to a storage slot).
    mapping(uint256 => mapping(address => uint72[])) private _reveals;
    mapping(uint256 epoch => SeedShares) private _seedShares;
    mapping(uint256 => mapping(address => Score)) private _scores;
    mapping(address => uint256) private _lastScored;

    constructor(
        address governor,
        IEpochSchedule schedule_,
        IServerRegistry registry_,
        IWorkLedger ledger_,
        IRewardPool rewardPool_,
        IVerifierStakes verifierStakes_,
        uint256 theta_,
        uint256 minVerifiers_,
        uint256 immunityEpochs_,
        Rules memory rules,
        VerifierRules memory verifierRules
    ) Governed(governor, schedule_) {
        registry = registry_;
        ledger = ledger_;
        rewardPool = rewardPool_;
        verifierStakes = verifierStakes_;
        SLASHING_RULE = rules.slashing;
        REWARD_RULE = rules.reward;
        _setTheta(theta_);
        _setMinVerifiers(minVerifiers_);
        _setImmunityEpochs(immunityEpochs_);
        _setMinVerifierStake(verifierRules.minStake);
        _setVerifierSlashFraction(verifierRules.slashFraction);
        _setKappa(verifierRules.kappa);
    }

    // ---------------------------------------------------------------- the sampling seed

    /// @inheritdoc ITrustScoring
    function commitSeed(uint256 epoch, bytes32 commitment) external onlyRole(VERIFIER_ROLE) whenNotPaused {
        IEpochSchedule.Phase phase = schedule.phase(epoch);
        if (phase != IEpochSchedule.Phase.Work && phase != IEpochSchedule.Phase.CommitWork) {
            revert IEpochSchedule.WrongPhase(epoch, IEpochSchedule.Phase.CommitWork, phase);
        }
        VerifierCommit storage c = _commits[epoch][msg.sender];
        if (c.seedCommitted) revert SeedShareAlreadyCommitted(epoch, msg.sender);
        _requireStake(msg.sender);
        c.seedCommitted = true;
        c.seedCommitment = commitment;
        _seedShares[epoch].committed += 1;
        emit SeedShareCommitted(epoch, msg.sender, commitment);
    }

    /// @inheritdoc ITrustScoring
    function revealSeed(uint256 epoch, bytes32 salt) external whenNotPaused {
        _requirePhase(epoch, IEpochSchedule.Phase.CommitScores);
        if (ledger.sampleSeed(epoch) != bytes32(0)) revert IWorkLedger.SeedAlreadyDrawn(epoch);
        VerifierCommit storage c = _commits[epoch][msg.sender];
        if (!c.seedCommitted) revert NoSeedShare(epoch, msg.sender);
        if (c.seedRevealed) revert SeedShareAlreadyRevealed(epoch, msg.sender);
        if (seedShareHash(msg.sender, epoch, salt) != c.seedCommitment) revert CommitmentMismatch(epoch, msg.sender);
        c.seedRevealed = true;
        SeedShares storage sh = _seedShares[epoch];
        sh.revealed += 1;
        sh.mix ^= salt;
        emit SeedShareRevealed(epoch, msg.sender, salt);
    }

    /// @inheritdoc ITrustScoring
    function drawSeed(uint256 epoch) external whenNotPaused returns (bytes32 seed) {
        _requirePhase(epoch, IEpochSchedule.Phase.CommitScores);
        SeedShares memory sh = _seedShares[epoch];
        uint256 readyAt = seedReadyAt(epoch);
        if (sh.revealed < sh.committed && block.timestamp < readyAt) {
            revert SeedNotReady(epoch, sh.revealed, sh.committed, readyAt);
        }
        seed = sh.revealed > 0
            ? keccak256(abi.encode(sh.mix, epoch, address(ledger)))
            // No verifier revealed a share: the block's randomness, which the caller can wait for (see SECURITY.md)
            : keccak256(abi.encode(blockhash(block.number - 1), block.prevrandao, epoch, address(ledger)));
        ledger.recordSeed(epoch, seed, msg.sender);
    }

    // ---------------------------------------------------------------- verifiers

    /// @inheritdoc ITrustScoring
    function commitScores(uint256 epoch, bytes32 commitment) external onlyRole(VERIFIER_ROLE) whenNotPaused {
        _requirePhase(epoch, IEpochSchedule.Phase.CommitScores);
        VerifierCommit storage c = _commits[epoch][msg.sender];
        if (c.committed) revert ScoresAlreadyCommitted(epoch, msg.sender);
        _requireStake(msg.sender);
        uint256 index = _committers[epoch];
        if (index == MAX_VERIFIERS) revert TooManyVerifiers(epoch);
        _committers[epoch] = index + 1;
        _verifierAt[epoch][index] = msg.sender;
        c.committed = true;
        c.commitment = commitment;
        c.index = uint8(index);
        emit ScoresCommitted(epoch, msg.sender, commitment);
    }

    function _requireStake(address verifier) private view {
        uint256 bonded = verifierStakes.bondedOf(verifier);
        if (bonded < minVerifierStake) revert VerifierStakeTooLow(verifier, bonded, minVerifierStake);
    }

    /// @inheritdoc ITrustScoring
    function revealScores(uint256 epoch, address[] calldata servers, uint256[] calldata accuracies, bytes32 salt)
        external
        onlyRole(VERIFIER_ROLE)
        whenNotPaused
    {
        _requirePhase(epoch, IEpochSchedule.Phase.RevealScores);
        VerifierCommit storage c = _commits[epoch][msg.sender];
        if (!c.committed) revert NoCommitment(epoch, msg.sender);
        if (c.revealed) revert ScoresAlreadyRevealed(epoch, msg.sender);
        if (servers.length != accuracies.length) revert LengthMismatch(servers.length, accuracies.length);
        if (servers.length == 0) revert EmptyReveal();
        if (scoresHash(msg.sender, epoch, servers, accuracies, salt) != c.commitment) {
            revert CommitmentMismatch(epoch, msg.sender);
        }
        c.revealed = true;
        uint72 index = c.index; // below the accuracy in each packed reveal (Median.SHIFT bits)
        for (uint256 i = 0; i < servers.length; ++i) {
            if (i > 0 && servers[i] <= servers[i - 1]) revert ServersNotSorted(i);
            if (accuracies[i] > ONE) revert AccuracyOutOfRange(servers[i], accuracies[i]);
            _reveals[epoch][servers[i]].push(uint72(accuracies[i]) << Median.SHIFT | index);
        }
        emit ScoresRevealed(epoch, msg.sender, servers, accuracies, salt);
        // Paid for verifying unless it withheld its seed share (then it is penalized instead)
        if (!c.seedCommitted || c.seedRevealed) rewardPool.addVerifier(epoch, msg.sender);
    }

    // ---------------------------------------------------------------- penalties

    /// @inheritdoc ITrustScoring
    function penalizeNoReveal(uint256 epoch, address verifier) external whenNotPaused returns (uint256 amount) {
        VerifierCommit storage c = _penalizable(epoch, verifier);
        if (c.revealed) revert ScoresWereRevealed(epoch, verifier);
        c.penalized = true;
        amount = verifierStakes.slash(verifier, epoch, verifierSlashFraction);
        emit NoRevealPenalized(epoch, verifier, amount);
    }

    /// @inheritdoc ITrustScoring
    function penalizeSeedWithheld(uint256 epoch, address verifier) external whenNotPaused returns (uint256 amount) {
        if (ledger.sampleSeed(epoch) == bytes32(0)) revert SeedNotDrawn(epoch);
        VerifierCommit storage c = _commits[epoch][verifier];
        if (!c.seedCommitted) revert NoSeedShare(epoch, verifier);
        if (c.seedRevealed) revert SeedShareWasRevealed(epoch, verifier);
        if (c.penalized) revert AlreadyPenalized(epoch, verifier);
        c.penalized = true;
        amount = verifierStakes.slash(verifier, epoch, verifierSlashFraction);
        emit SeedWithheldPenalized(epoch, verifier, amount);
    }

    /// @dev The commit of `verifier` in `epoch`, once the epoch's reveals are closed, if not penalized yet.
    function _penalizable(uint256 epoch, address verifier) private view returns (VerifierCommit storage c) {
        IEpochSchedule.Phase phase = schedule.phase(epoch);
        if (phase < IEpochSchedule.Phase.Finalize) {
            revert IEpochSchedule.WrongPhase(epoch, IEpochSchedule.Phase.Finalize, phase);
        }
        c = _commits[epoch][verifier];
        if (!c.committed) revert NoCommitment(epoch, verifier);
        if (c.penalized) revert AlreadyPenalized(epoch, verifier);
    }

    // ---------------------------------------------------------------- finalize

    /// @inheritdoc ITrustScoring
    function finalize(uint256 epoch, address[] calldata servers) external whenNotPaused {
        _requirePhase(epoch, IEpochSchedule.Phase.Finalize);
        // A fact of the epoch's work period: no registration, move, exit or slash after it changes it.
        uint256 maxSpan = registry.maxSpanOf(epoch);
        for (uint256 i = 0; i < servers.length; ++i) {
            if (_scores[epoch][servers[i]].outcome == Outcome.None) {
                _finalizeOne(epoch, servers[i], maxSpan);
            }
        }
    }

    function _finalizeOne(uint256 epoch, address server, uint256 maxSpan) private {
        IServerRegistry.ScoringFacts memory f = registry.scoringFacts(server, epoch);
        if (f.status == IServerRegistry.Status.None) revert UnknownServer(server);
        // Not registered during the epoch at all: nothing of it is scored.
        if (f.numLayers == 0) return;
        (uint256 workUnits, bool lost) = ledger.workOf(epoch, server);
        uint72[] memory reveals = _reveals[epoch][server];
        Score memory s = _score(reveals, f.numLayers, f.weight, maxSpan);
        // A declared loss is a soft failure: whatever the verifiers revealed, no pay and no slash.
        if (lost) s.outcome = Outcome.Forfeited;

        uint256 weight = 0;
        if (s.outcome == Outcome.Passed) {
            // eq. 4, activate. Paid only if active for all of the epoch and it committed work; what it does
            // after the epoch (unstaking, being slashed for another epoch) does not take this pay away.
            // Work: paid for committed work. Stake: for staked, verified availability, work or none (clients' fees
            // pay for work), so that work a server pays itself for cannot even qualify it.
            if (f.active) {
                if (REWARD_RULE == RewardRule.Stake) weight = uint256(s.score) * f.stake;
                else if (workUnits > 0) weight = uint256(s.score) * workUnits;
            }
        } else if (s.outcome == Outcome.Slashed) {
            // eq. 4, deactivate, unless already deactivated or still immune
            if (f.status == IServerRegistry.Status.Deactivated) s.outcome = Outcome.Failed;
            else if (epoch < f.registeredEpoch + immunityEpochs) s.outcome = Outcome.Immune;
        }
        // Finalize windows of consecutive epochs may overlap: keep the latest epoch, whatever the call order.
        if (s.outcome != Outcome.NoQuorum && epoch + 1 > _lastScored[server]) _lastScored[server] = epoch + 1;

        _scores[epoch][server] = s;
        emit ServerScored(epoch, server, s.acc, s.score, s.numLayers, s.maxLayers, s.outcome, weight);
        if (weight > 0) rewardPool.recordWeight(epoch, server, weight);
        if (s.outcome == Outcome.Slashed) registry.slash(server, epoch);
        if (s.outcome != Outcome.NoQuorum) _penalizeDeviations(epoch, server, reveals, s.acc);
    }

    /// @dev A verifier whose accuracy for `server` lies more than κ from the median is slashed and not paid for the
    /// epoch, here and now: the verifiers paid are then fixed when the epoch settles, whoever finalizes and when.
    /// `sorted` is sorted by accuracy (Median.compute), so deviations sit at its two ends: an honest epoch reads two
    /// entries. Every flag is set before the first external call (checks-effects-interactions).
    function _penalizeDeviations(uint256 epoch, address server, uint72[] memory sorted, uint256 median) private {
        uint256 k = kappa;
        uint256 lo = 0;
        uint256 hi = sorted.length;
        while (lo < hi && (sorted[lo] >> Median.SHIFT) + k < median) ++lo;
        while (hi > lo && (sorted[hi - 1] >> Median.SHIFT) > median + k) --hi;
        if (lo == 0 && hi == sorted.length) return;

        // Effects: the deviating reveals are sorted[0, lo) and sorted[hi, n); keep those not yet penalized
        uint72[] memory liars = new uint72[](lo + sorted.length - hi);
        uint256 count = 0;
        for (uint256 i = 0; i < sorted.length; ++i) {
            if (i == lo) i = hi;
            if (i == sorted.length) break;
            VerifierCommit storage c = _commits[epoch][_verifierAt[epoch][uint8(sorted[i])]];
            if (c.penalized) continue;
            c.penalized = true;
            liars[count++] = sorted[i];
        }
        // Interactions
        uint256 fraction = verifierSlashFraction;
        for (uint256 i = 0; i < count; ++i) {
            address verifier = _verifierAt[epoch][uint8(liars[i])];
            rewardPool.removeVerifier(epoch, verifier);
            uint256 amount = verifierStakes.slash(verifier, epoch, fraction);
            emit DeviationPenalized(epoch, verifier, server, liars[i] >> Median.SHIFT, median, amount);
        }
    }

    /// @dev eq. 3 on the median of the revealed accuracies, with outcome Passed, Slashed or NoQuorum; the caller
    /// turns Slashed into Immune or Failed where those apply. `l` and `maxSpan` are facts of the epoch. The
    /// slashing rule compares θ with the accuracy (default: a short span never costs an honest server its
    /// stake) or with S_i (the paper's eq. 4).
    function _score(uint72[] memory reveals, uint256 l, uint256 w, uint256 maxSpan)
        private
        view
        returns (Score memory s)
    {
        uint256 n = reveals.length;
        s.verifiers = uint8(n);
        if (n == 0 || n < minVerifiers) {
            s.outcome = Outcome.NoQuorum;
            return s;
        }

        uint256 maxL = maxSpan < l ? l : maxSpan;
        uint256 acc = Median.compute(reveals); // sorts `reveals` for _penalizeDeviations
        // One division, last: dividing by max(l) first lost up to w/ONE units, so a short span compensated with
        // w = max(l)/l at acc = θ scored just below θ and was slashed. acc·l·w ≤ 1e18·65535·100e18 fits.
        uint256 score = acc * l * w / (maxL * ONE);
        if (score > ONE) score = ONE;
        (s.acc, s.score, s.numLayers, s.maxLayers) = (uint64(acc), uint64(score), uint16(l), uint16(maxL));
        uint256 judged = SLASHING_RULE == SlashingRule.TrustScore ? score : acc;
        s.outcome = judged >= theta ? Outcome.Passed : Outcome.Slashed;
    }

    // ---------------------------------------------------------------- governance

    function setTheta(uint256 value) external onlyRole(GOVERNOR_ROLE) {
        _setTheta(value);
    }

    function setMinVerifiers(uint256 value) external onlyRole(GOVERNOR_ROLE) {
        _setMinVerifiers(value);
    }

    function setImmunityEpochs(uint256 value) external onlyRole(GOVERNOR_ROLE) {
        _setImmunityEpochs(value);
    }

    function setMinVerifierStake(uint256 value) external onlyRole(GOVERNOR_ROLE) {
        _setMinVerifierStake(value);
    }

    function setVerifierSlashFraction(uint256 value) external onlyRole(GOVERNOR_ROLE) {
        _setVerifierSlashFraction(value);
    }

    function setKappa(uint256 value) external onlyRole(GOVERNOR_ROLE) {
        _setKappa(value);
    }

    function _setMinVerifierStake(uint256 value) private {
        _checkBounds("minVerifierStake", value, 1, type(uint128).max);
        minVerifierStake = value;
    }

    function _setVerifierSlashFraction(uint256 value) private {
        _checkBounds("verifierSlashFraction", value, 0, ONE);
        verifierSlashFraction = value;
    }

    function _setKappa(uint256 value) private {
        _checkBounds("kappa", value, 0, ONE);
        kappa = value;
    }

    function _setTheta(uint256 value) private {
        _checkBounds("theta", value, 0, ONE);
        theta = value;
    }

    function _setMinVerifiers(uint256 value) private {
        _checkBounds("minVerifiers", value, 1, MAX_VERIFIERS);
        minVerifiers = value;
    }

    function _setImmunityEpochs(uint256 value) private {
        _checkBounds("immunityEpochs", value, 0, MAX_IMMUNITY_EPOCHS);
        immunityEpochs = value;
    }

    // ---------------------------------------------------------------- views

    function scoresHash(
        address verifier,
        uint256 epoch,
        address[] calldata servers,
        uint256[] calldata accuracies,
        bytes32 salt
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(verifier, epoch, servers, accuracies, salt));
    }

    function seedShareHash(address verifier, uint256 epoch, bytes32 salt) public pure returns (bytes32) {
        return keccak256(abi.encode(verifier, epoch, salt));
    }

    /// @inheritdoc ITrustScoring
    function seedReadyAt(uint256 epoch) public view returns (uint256) {
        IEpochSchedule.Windows memory w = schedule.windows(epoch);
        return w.commitWorkEnd + (w.commitScoresEnd - w.commitWorkEnd) / 4;
    }

    function seedShares(uint256 epoch) external view returns (uint256 committed, uint256 revealed) {
        SeedShares storage sh = _seedShares[epoch];
        return (sh.committed, sh.revealed);
    }

    function seedShareOf(uint256 epoch, address verifier) external view returns (bytes32 commitment, bool revealed) {
        VerifierCommit storage c = _commits[epoch][verifier];
        return (c.seedCommitment, c.seedRevealed);
    }

    function scoreOf(uint256 epoch, address server) external view returns (Score memory) {
        return _scores[epoch][server];
    }

    function lastScore(address server) external view returns (uint256 epoch, Score memory score) {
        uint256 stored = _lastScored[server];
        if (stored == 0) return (0, score);
        epoch = stored - 1;
        score = _scores[epoch][server];
    }

    function revealedAccuracies(uint256 epoch, address server) external view returns (uint64[] memory accs) {
        uint72[] storage reveals = _reveals[epoch][server];
        accs = new uint64[](reveals.length);
        for (uint256 i = 0; i < accs.length; ++i) {
            accs[i] = uint64(reveals[i] >> Median.SHIFT);
        }
    }

    function commitmentOf(uint256 epoch, address verifier) external view returns (bytes32 commitment, bool revealed) {
        VerifierCommit storage c = _commits[epoch][verifier];
        return (c.commitment, c.revealed);
    }

    function isPenalized(uint256 epoch, address verifier) external view returns (bool) {
        return _commits[epoch][verifier].penalized;
    }
}
