// The protocol's history, from event logs: fetched once from the deployment block in pages of blocks (sized
// to keep each answer to a few thousand logs, several pages in flight), then only the new blocks after each
// head. Every log is applied to per-server and per-epoch indexes that the views and charts read.
import { decoderFor } from "./abi.js";
import { toHex } from "./rpc.js";

/** Events the dashboard reads. RewardWeightRecorded repeats ServerScored.rewardWeight; FactsScheduled and
 * MaxSpanScheduled repeat registrations, moves and status changes as the epoch facts scoring uses; role events say
 * nothing about servers. */
export const HISTORY_EVENTS = [
  "ServerRegistered", "ServerUpdated", "StakeAdded", "UnstakeRequested", "Withdrawn", "StatusChanged", "Slashed",
  "WeightSet", "WorkCommitted", "SeedDrawn", "ScoresCommitted", "ScoresRevealed", "ServerScored", "EpochFunded",
  "SlashDeposited", "RewardsClaimed", "PoolRolledOver", "ParameterSet", "Paused", "Unpaused", "LossDeclared",
  "VerifierStaked", "VerifierUnstakeRequested", "VerifierWithdrawn", "VerifierSlashed", "NoRevealPenalized",
  "DeviationPenalized", "SeedShareCommitted", "SeedShareRevealed", "SeedWithheldPenalized", "VerifierAdded",
  "VerifierRemoved", "PriceAnnounced", "Deposited", "WithdrawalRequested", "Redeemed", "FeesWithdrawn", "Challenged",
  "ChallengeAnswered", "ChallengeUpheld", "BondWithdrawn", "VerifierEndpointAnnounced", "ServingDeclared",
];

const STAKE_EVENTS = new Set(["ServerRegistered", "StakeAdded", "UnstakeRequested", "Withdrawn", "Slashed"]);
const TARGET_LOGS_PER_PAGE = 4000;
const FIRST_PAGE_BLOCKS = 2000;
const IN_FLIGHT = 3;

function emptyPool(epoch) {
  return { epoch, funded: 0n, slashed: 0n, rolledIn: 0n, rolledOut: false, claimed: 0n, totalWeight: 0n,
    committed: 0, workUnits: 0n, scored: 0, slashes: 0, commits: 0, reveals: 0, seed: null, seedShares: 0,
    seedReveals: 0, verifiers: 0 };
}

export class History {
  constructor({ contracts, decoders, fromBlock }) {
    this.contracts = contracts;
    this.decoders = decoders;
    this.fromBlock = fromBlock;
    this.byAddress = new Map(Object.values(contracts).map((c) => [c.address, c.name]));
    this.topics = [...new Set([...decoders.values()].filter((d) => HISTORY_EVENTS.includes(d.name)).map((d) => d.topic))];
    this.reset();
  }

  reset() {
    this.synced = this.fromBlock - 1;
    this.events = [];
    this.byServer = new Map(); // server -> { events, scores: Map, work: Map, claims: Map, stake: [], totalWork, fees, price }
    this.pools = new Map();
    this.challenges = new Map(); // challenge id -> the Challenged event's args (its server, epoch, answer index)
    this.payments = { deposited: 0n, redeemed: 0n, feesWithdrawn: 0n, clients: new Set() };
    this.timestamps = new Map();
    this.version = 0;
    this.logsFetched = 0;
  }

  server(address) {
    let s = this.byServer.get(address);
    if (!s) {
      s = { events: [], scores: new Map(), work: new Map(), claims: new Map(), stake: [], totalWork: 0n,
        current: { stake: 0n, unbonding: 0n }, registeredBlock: null,
        // client fees (Payments): paid in by redeemed receipts, by the receipts' epoch; taken out by withdrawFees
        fees: { redeemed: 0n, withdrawn: 0n, byEpoch: new Map() },
        price: null }; // the last announced price (wei per token-layer); null: never announced
      this.byServer.set(address, s);
    }
    return s;
  }

  pool(epoch) {
    let p = this.pools.get(epoch);
    if (!p) this.pools.set(epoch, (p = emptyPool(epoch)));
    return p;
  }

  /** Fetch and apply the logs of blocks (synced, toBlock]; returns how many were new. Pages are applied in
   * chain order as they arrive (decoding overlaps the fetching), and `synced` follows the applied pages, so
   * a sync that fails half way resumes where it stopped. */
  async sync(rpc, toBlock, onProgress = () => {}) {
    if (toBlock <= this.synced) return 0;
    const t0 = performance.now();
    let applied = 0;
    let applyMs = 0;
    await fetchLogs(rpc, {
      address: [...this.byAddress.keys()], topics: [this.topics], from: this.synced + 1, to: toBlock, onProgress,
      onPage: (logs, hi) => {
        const t = performance.now();
        for (const log of logs) this.apply(log);
        this.synced = hi;
        applied += logs.length;
        applyMs += performance.now() - t;
      },
    });
    this.logsFetched += applied;
    const t1 = performance.now();
    await this.fillTimestamps(rpc);
    this.lastSync = { totalMs: t1 - t0, applyMs, timestampsMs: performance.now() - t1, logs: applied };
    if (applied) this.version += 1;
    return applied;
  }

  apply(log) {
    const decoder = decoderFor(this.decoders, log);
    if (!decoder) return;
    const a = decoder.decode(log);
    const ev = {
      name: decoder.name, contract: this.byAddress.get(log.address.toLowerCase()), args: a,
      block: parseInt(log.blockNumber, 16), index: parseInt(log.logIndex, 16), tx: log.transactionHash,
    };
    this.events.push(ev);
    // RewardsClaimed names the account paid: a verifier claiming its pay has no registration (events come in chain
    // order, so a server's registration is always seen before its claims)
    if (ev.name === "RewardsClaimed" && !this.byServer.get(a.server)?.registeredBlock) ev.verifierPay = true;
    const srv = a.server && !ev.verifierPay ? this.server(a.server) : null;
    if (srv) srv.events.push(ev);
    const epoch = a.epoch !== undefined ? Number(a.epoch) : null;
    switch (ev.name) {
      case "ServerRegistered":
        srv.current = { stake: a.stake, unbonding: 0n };
        srv.registeredBlock = ev.block;
        break;
      case "StakeAdded":
        srv.current = { ...srv.current, stake: a.stake };
        break;
      case "UnstakeRequested":
        srv.current = { stake: srv.current.stake - a.amount, unbonding: a.unbonding };
        break;
      case "Withdrawn": // ServerRegistry's (a server's stake); Payments' names a client, not a server
        if (srv) srv.current = { ...srv.current, unbonding: 0n };
        break;
      case "Slashed":
        srv.current = { stake: a.stakeLeft, unbonding: a.unbondingLeft };
        this.pool(epoch).slashes += 1;
        break;
      case "WorkCommitted": {
        srv.work.set(epoch, { workUnits: a.workUnits, root: a.root, firstLayer: Number(a.firstLayer), numLayers: Number(a.numLayers), block: ev.block });
        srv.totalWork += a.workUnits;
        const p = this.pool(epoch);
        p.committed += 1;
        p.workUnits += a.workUnits;
        break;
      }
      case "ServerScored": {
        srv.scores.set(epoch, { acc: a.acc, score: a.score, numLayers: Number(a.numLayers), maxLayers: Number(a.maxLayers),
          outcome: Number(a.outcome), rewardWeight: a.rewardWeight, block: ev.block });
        const p = this.pool(epoch);
        p.scored += 1;
        p.totalWeight += a.rewardWeight;
        break;
      }
      case "RewardsClaimed":
        if (srv) srv.claims.set(epoch, a.amount);
        this.pool(epoch).claimed += a.amount;
        break;
      case "EpochFunded":
        this.pool(epoch).funded += a.amount;
        break;
      case "SlashDeposited":
        this.pool(epoch).slashed += a.amount;
        break;
      case "PoolRolledOver":
        this.pool(Number(a.fromEpoch)).rolledOut = true;
        this.pool(Number(a.toEpoch)).rolledIn += a.amount;
        break;
      case "ScoresCommitted":
        this.pool(epoch).commits += 1;
        break;
      case "ScoresRevealed":
        this.pool(epoch).reveals += 1;
        break;
      case "SeedDrawn":
        this.pool(epoch).seed = a.seed;
        break;
      case "SeedShareCommitted":
        this.pool(epoch).seedShares += 1;
        break;
      case "SeedShareRevealed":
        this.pool(epoch).seedReveals += 1;
        break;
      // the verifiers the epoch's pool pays (RewardPool.EpochPool.verifiers): their pot is not the servers'
      case "VerifierAdded":
        this.pool(epoch).verifiers += 1;
        break;
      case "VerifierRemoved":
        this.pool(epoch).verifiers -= 1;
        break;
      case "PriceAnnounced":
        srv.price = a.pricePerTokenLayer;
        break;
      case "Deposited":
        this.payments.deposited += a.amount;
        this.payments.clients.add(a.client);
        break;
      case "Redeemed":
        srv.fees.redeemed += a.paid;
        srv.fees.byEpoch.set(epoch, (srv.fees.byEpoch.get(epoch) || 0n) + a.paid);
        this.payments.redeemed += a.paid;
        break;
      case "FeesWithdrawn":
        srv.fees.withdrawn += a.amount;
        this.payments.feesWithdrawn += a.amount;
        break;
      case "Challenged":
        this.challenges.set(a.id, a);
        break;
      case "ChallengeAnswered":
      case "ChallengeUpheld":
        ev.challenge = this.challenges.get(a.id);
        break;
      default:
    }
    if (srv && STAKE_EVENTS.has(ev.name)) srv.stake.push({ block: ev.block, ...srv.current });
  }

  /** Block timestamps of stake changes, which place them in epochs (one batch for all missing blocks). */
  async fillTimestamps(rpc) {
    const missing = new Set();
    for (const s of this.byServer.values()) for (const p of s.stake) if (!this.timestamps.has(p.block)) missing.add(p.block);
    if (!missing.size) return;
    const blocks = [...missing];
    const headers = await rpc.batch(blocks.map((b) => ["eth_getBlockByNumber", [toHex(b), false]]));
    blocks.forEach((b, i) => this.timestamps.set(b, Number(BigInt(headers[i].timestamp))));
  }
}

/** eth_getLogs over [from, to] in pages: the page size follows the log density seen so far, several pages are
 * in flight at once, a page the node refuses (too many results, range too large) is split in two, and
 * `onPage(logs, lastBlock)` gets the pages in block order. */
export async function fetchLogs(rpc, { address, topics, from, to, onProgress = () => {}, onPage }) {
  const done = new Map(); // first block of a finished page -> [logs, last block]
  let next = from; // first block of the next page to hand to onPage
  let cursor = from;
  let span = FIRST_PAGE_BLOCKS;
  let seenBlocks = 0;
  let seenLogs = 0;
  const total = to - from + 1;

  async function page(lo, hi) {
    try {
      return await rpc.send("eth_getLogs", [{ address, topics, fromBlock: toHex(lo), toBlock: toHex(hi) }]);
    } catch (err) {
      if (err.kind === "no-chain" || hi <= lo) throw err;
      const mid = Math.floor((lo + hi) / 2);
      return (await page(lo, mid)).concat(await page(mid + 1, hi));
    }
  }

  async function worker() {
    while (cursor <= to) {
      const lo = cursor;
      const hi = Math.min(to, lo + span - 1);
      cursor = hi + 1;
      const logs = await page(lo, hi);
      seenBlocks += hi - lo + 1;
      seenLogs += logs.length;
      const density = seenLogs / seenBlocks;
      span = Math.max(1, Math.min(100000, Math.floor(TARGET_LOGS_PER_PAGE / Math.max(density, 1e-3))));
      done.set(lo, [logs, hi]);
      while (done.has(next)) {
        const [ready, last] = done.get(next);
        done.delete(next);
        onPage(ready, last);
        next = last + 1;
      }
      onProgress({ blocks: seenBlocks, total, logs: seenLogs });
    }
  }

  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
}
