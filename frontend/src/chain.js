// What the contracts hold now: one consistent snapshot per block, every view pinned to the same block
// number, read in one or two JSON-RPC batches.
import { toHex } from "./rpc.js";
import { Phase } from "./schema.js";

const SERVER_PAGE = 250;

/** The schedule's immutables, read once. */
export async function readSchedule(rpc, c) {
  const names = ["GENESIS", "EPOCH_LENGTH", "COMMIT_WORK_WINDOW", "COMMIT_SCORES_WINDOW", "REVEAL_WINDOW", "FINALIZE_WINDOW"];
  const calls = names.map((n) => c.EpochSchedule.call(n));
  const values = await rpc.batch(calls.map((x) => x.request));
  const [genesis, epochLength, commitWork, commitScores, reveal, finalize] = values.map((v, i) => Number(calls[i].decode(v)));
  return { genesis, epochLength, commitWork, commitScores, reveal, finalize };
}

/** Window boundaries of `epoch`, as EpochSchedule.windows computes them. */
export function windows(schedule, epoch) {
  const workStart = schedule.genesis + epoch * schedule.epochLength;
  const workEnd = workStart + schedule.epochLength;
  const commitWorkEnd = workEnd + schedule.commitWork;
  const commitScoresEnd = commitWorkEnd + schedule.commitScores;
  const revealEnd = commitScoresEnd + schedule.reveal;
  const finalizeEnd = revealEnd + schedule.finalize;
  return { workStart, workEnd, commitWorkEnd, commitScoresEnd, revealEnd, finalizeEnd };
}

/** The last epoch whose rewards are claimable at time `t` (-1 and below: none yet): epoch e settles at
 * windows(e).finalizeEnd, which is windows(0).finalizeEnd + e * epochLength. */
export function lastSettled(schedule, t) {
  return Math.floor((t - windows(schedule, 0).finalizeEnd) / schedule.epochLength);
}

/** IEpochSchedule.Phase of `epoch` at time `t` (a value of Phase, index into PHASES). */
export function phaseAt(schedule, epoch, t) {
  const w = windows(schedule, epoch);
  const ends = [w.workStart, w.workEnd, w.commitWorkEnd, w.commitScoresEnd, w.revealEnd, w.finalizeEnd];
  const i = ends.findIndex((end) => t < end);
  return i === -1 ? Phase.Settled : i;
}

/** Epoch whose work period contains time `t` (0 before genesis, like currentEpoch()). */
export function epochAt(schedule, t) {
  return t < schedule.genesis ? 0 : Math.floor((t - schedule.genesis) / schedule.epochLength);
}

export async function readSnapshot(rpc, c, blockNumber) {
  const block = toHex(blockNumber);
  const reads = {
    currentEpoch: c.EpochSchedule.call("currentEpoch", [], block),
    numLayers: c.ServerRegistry.call("NUM_LAYERS", [], block),
    minStake: c.ServerRegistry.call("minStake", [], block),
    unbondingPeriod: c.ServerRegistry.call("unbondingPeriod", [], block),
    slashFraction: c.ServerRegistry.call("slashFraction", [], block),
    totalBonded: c.ServerRegistry.call("totalBonded", [], block),
    totalUnbonding: c.ServerRegistry.call("totalUnbonding", [], block),
    serverCount: c.ServerRegistry.call("serverCount", [], block),
    servers: c.ServerRegistry.call("getServers", [0n, BigInt(SERVER_PAGE)], block),
    coverage: c.ServerRegistry.call("coverage", [], block),
    maxActiveSpan: c.ServerRegistry.call("maxActiveSpan", [], block),
    theta: c.TrustScoring.call("theta", [], block),
    minVerifiers: c.TrustScoring.call("minVerifiers", [], block),
    immunityEpochs: c.TrustScoring.call("immunityEpochs", [], block),
    slashingRule: c.TrustScoring.call("SLASHING_RULE", [], block),
    totalFunded: c.RewardPool.call("totalFunded", [], block),
    totalSlashed: c.RewardPool.call("totalSlashed", [], block),
    totalPaid: c.RewardPool.call("totalPaid", [], block),
  };
  // fixed at deployment; a deployment from before verifiers were paid has none
  if (c.RewardPool.functions.has("VERIFIER_SHARE")) reads.verifierShare = c.RewardPool.call("VERIFIER_SHARE", [], block);
  // client fees held in Payments (redeemed, not yet withdrawn by their servers)
  if (c.Payments.functions.has("totalFees")) reads.feesHeld = c.Payments.call("totalFees", [], block);
  for (const name of ["ServerRegistry", "WorkLedger", "TrustScoring", "RewardPool", "Payments", "ServingChallenges"]) {
    if (c[name].functions.has("paused")) reads[`paused:${name}`] = c[name].call("paused", [], block);
  }
  const keys = Object.keys(reads);
  const [header, ...values] = await rpc.batch([["eth_getBlockByNumber", [block, false]], ...keys.map((k) => reads[k].request)]);
  if (!header) throw new Error(`block ${blockNumber} is not available`);
  const s = {};
  keys.forEach((k, i) => (s[k] = reads[k].decode(values[i])));

  let [addrs, records] = s.servers;
  const count = Number(s.serverCount);
  if (count > addrs.length) {
    const pages = [];
    for (let offset = SERVER_PAGE; offset < count; offset += SERVER_PAGE) {
      pages.push(c.ServerRegistry.call("getServers", [BigInt(offset), BigInt(SERVER_PAGE)], block));
    }
    const more = await rpc.batch(pages.map((p) => p.request));
    more.forEach((hex, i) => {
      const [a, r] = pages[i].decode(hex);
      addrs = addrs.concat(a);
      records = records.concat(r);
    });
  }
  const servers = addrs.map((address, i) => ({ address: address.toLowerCase(), ...records[i], status: Number(records[i].status) }));
  const paused = Object.keys(s).filter((k) => k.startsWith("paused:") && s[k]).map((k) => k.slice(7));
  return {
    block: { number: blockNumber, timestamp: Number(BigInt(header.timestamp)), hash: header.hash },
    currentEpoch: Number(s.currentEpoch),
    params: {
      numLayers: Number(s.numLayers),
      minStake: s.minStake,
      unbondingPeriod: Number(s.unbondingPeriod),
      slashFraction: s.slashFraction,
      theta: s.theta,
      minVerifiers: Number(s.minVerifiers),
      immunityEpochs: Number(s.immunityEpochs),
      slashingRule: Number(s.slashingRule),
      verifierShare: s.verifierShare ?? 0n,
    },
    totals: {
      bonded: s.totalBonded,
      unbonding: s.totalUnbonding,
      funded: s.totalFunded,
      slashed: s.totalSlashed,
      paid: s.totalPaid,
      feesHeld: s.feesHeld ?? 0n,
    },
    servers,
    coverage: s.coverage.map(Number),
    maxActiveSpan: Number(s.maxActiveSpan),
    paused,
  };
}
