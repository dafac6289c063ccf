// Everything a view shows, derived from the snapshot (what the contracts hold at the head block) and the
// history (what the events said). Reward shares follow RewardPool.shareOf exactly: when some server earned a
// weight and some verifier is paid, VERIFIER_SHARE of the pool is the verifiers' pot (split equally), and the
// servers share the rest by integer division of (pool - pot) * weight by the epoch's total weight, so pending and
// earned amounts match the contract to the wei.
import { epochAt, lastSettled as lastSettledAt, phaseAt, windows } from "./chain.js";
import { Outcome, Phase, STATUSES, servingLabel } from "./schema.js";

const NO_QUORUM = Outcome.NoQuorum;
export const STATUS_ORDER = { active: 0, inactive: 1, deactivated: 2, none: 3 };

export function poolSize(p) {
  return p ? p.funded + p.slashed + p.rolledIn : 0n;
}

const ONE = 10n ** 18n;

/** RewardPool.verifierPot: the part of an epoch's pool its paid verifiers split. */
export function verifierPot(p, verifierShare) {
  return !p || p.totalWeight === 0n || p.verifiers <= 0 ? 0n : (poolSize(p) * verifierShare) / ONE;
}

export function buildModel({ snapshot, history, schedule }) {
  const now = snapshot.block.timestamp;
  const current = snapshot.currentEpoch;
  const settled = (epoch) => now >= windows(schedule, epoch).finalizeEnd;
  const verifierShare = snapshot.params.verifierShare ?? 0n;
  const shareOf = (epoch, weight) => {
    const p = history.pools.get(epoch);
    return !p || p.totalWeight === 0n ? 0n : ((poolSize(p) - verifierPot(p, verifierShare)) * weight) / p.totalWeight;
  };
  const epochOfBlock = (block) => epochAt(schedule, history.timestamps.get(block) ?? now);

  // what a server's history adds up to changes only with new events or when an epoch settles: kept between blocks
  const lastSettled = lastSettledAt(schedule, now);
  const key = `${history.version}|${lastSettled}`;
  const totals = (h) => {
    let last = null;
    let earned = 0n;
    let pending = 0n;
    for (const [epoch, sc] of h.scores) {
      if (sc.outcome !== NO_QUORUM && (last === null || epoch > last.epoch)) last = { epoch, ...sc };
      if (sc.rewardWeight > 0n) {
        const share = shareOf(epoch, sc.rewardWeight);
        earned += share;
        if (!h.claims.has(epoch) && settled(epoch)) pending += share;
      }
    }
    let claimed = 0n;
    for (const amount of h.claims.values()) claimed += amount;
    const lastWork = [...h.work.keys()].reduce((m, e) => Math.max(m, e), -1);
    return { key, last, earned, pending, claimed, lastWork };
  };

  const servers = snapshot.servers.map((record) => {
    const h = history.byServer.get(record.address) || history.server(record.address);
    if (h.totals?.key !== key) h.totals = totals(h);
    const { last, earned, pending, claimed, lastWork } = h.totals;
    const status = STATUSES[record.status];
    return {
      address: record.address,
      endpoint: record.endpoint,
      firstLayer: Number(record.firstLayer),
      numLayers: Number(record.numLayers),
      serving: servingLabel(record.dtype, record.weights),
      status,
      slashed: record.timesSlashed > 0,
      unbondingFlag: record.unbonding > 0n,
      withdrawable: record.unbonding > 0n && now >= Number(record.unlockTime),
      stake: record.stake,
      unbonding: record.unbonding,
      unlockTime: Number(record.unlockTime),
      timesSlashed: Number(record.timesSlashed),
      totalSlashed: record.totalSlashed,
      weight: record.weight,
      registeredEpoch: Number(record.registeredEpoch),
      activeSince: Number(record.activeSince),
      last, // { epoch, acc, score, outcome, ... } or null
      belowTheta: last !== null && last.score < snapshot.params.theta,
      workUnits: h.totalWork,
      lastWork: lastWork >= 0 ? { epoch: lastWork, ...h.work.get(lastWork) } : null,
      earned,
      pending,
      claimed,
      // client fees (Payments), beside the pool rewards above: redeemed receipts in, withdrawFees out
      price: h.price,
      feesRedeemed: h.fees.redeemed,
      feesWithdrawn: h.fees.withdrawn,
      feesHeld: h.fees.redeemed - h.fees.withdrawn,
      history: h,
    };
  });

  const pools = [];
  const lastPoolEpoch = Math.max(current, ...history.pools.keys());
  for (let e = 0; e <= lastPoolEpoch; e++) {
    const p = history.pools.get(e);
    pools.push({ epoch: e, size: poolSize(p), verifierPot: verifierPot(p, verifierShare), phase: phaseAt(schedule, e, now), ...(p || {}) });
  }

  const epochs = { current, phase: phaseAt(schedule, current, now), windows: windows(schedule, current), settling: [] };
  for (let e = current - 1; e >= 0; e--) {
    const ph = phaseAt(schedule, e, now);
    if (ph === Phase.Settled) break;
    epochs.settling.push({ epoch: e, phase: ph, windows: windows(schedule, e) });
  }

  return { now, snapshot, schedule, servers, pools, epochs, shareOf, settled, epochOfBlock, history };
}

/** S_i and acc per finalized epoch (no-quorum epochs have no score and leave a gap). */
export function scorePoints(row) {
  return [...row.history.scores.entries()]
    .filter(([, sc]) => sc.outcome !== NO_QUORUM)
    .sort((a, b) => a[0] - b[0])
    .map(([epoch, sc]) => ({ epoch, score: sc.score, acc: sc.acc, outcome: sc.outcome }));
}

/** Bonded stake at the end of each epoch from registration to the current one: the value after every stake
 * event whose block falls in that epoch or before. */
export function stakePoints(model, row) {
  const changes = row.history.stake;
  if (!changes.length) return [];
  const out = [];
  let k = 0;
  let value = { stake: 0n, unbonding: 0n };
  const first = model.epochOfBlock(changes[0].block);
  for (let e = first; e <= model.epochs.current; e++) {
    while (k < changes.length && model.epochOfBlock(changes[k].block) <= e) value = changes[k++];
    out.push({ epoch: e, stake: value.stake, unbonding: value.unbonding });
  }
  return out;
}

/** Cumulative rewards by reward epoch: earned (the share once the epoch is finalized) and claimed. */
export function rewardPoints(model, row) {
  const h = row.history;
  const epochs = [...h.scores.keys()];
  if (!epochs.length) return [];
  const out = [];
  let earned = 0n;
  let claimed = 0n;
  for (let e = Math.min(...epochs); e <= model.epochs.current; e++) {
    const sc = h.scores.get(e);
    if (sc && sc.rewardWeight > 0n) earned += model.shareOf(e, sc.rewardWeight);
    claimed += h.claims.get(e) || 0n;
    out.push({ epoch: e, earned, claimed });
  }
  return out;
}

/** Network totals per epoch: bonded stake of all servers and cumulative rewards earned and claimed. */
export function networkPoints(model) {
  const n = model.epochs.current + 1;
  const stake = new Array(n).fill(0n);
  const earned = new Array(n).fill(0n);
  const claimed = new Array(n).fill(0n);
  for (const row of model.servers) {
    for (const p of stakePoints(model, row)) stake[p.epoch] += p.stake;
    for (const [e, sc] of row.history.scores) if (e < n && sc.rewardWeight > 0n) earned[e] += model.shareOf(e, sc.rewardWeight);
    for (const [e, amount] of row.history.claims) if (e < n) claimed[e] += amount;
  }
  for (let e = 1; e < n; e++) {
    earned[e] += earned[e - 1];
    claimed[e] += claimed[e - 1];
  }
  return stake.map((s, e) => ({ epoch: e, stake: s, earned: earned[e], claimed: claimed[e] }));
}
