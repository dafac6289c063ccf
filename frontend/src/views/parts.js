// Pieces several views share: badges, address links, KPI cards, the event feed and its wording.
import { checksum } from "../abi.js";
import { html } from "../dom.js";
import { compactLayers, dateTime, decimal18, eth, frac, price, short, span, wei } from "../format.js";
import { OUTCOMES, STATUSES, servingLabel } from "../schema.js";

export function serverLink(address) {
  return html`<a class="addr" href="#/server/${checksum(address)}" title="${checksum(address)}">${short(address)}</a>`;
}

export function accountText(address) {
  return html`<span class="addr" title="${checksum(address)}">${short(address)}</span>`;
}

export function statusBadges(row) {
  return html`<span class="badge status-${row.status}">${row.status}</span>${row.unbondingFlag
    ? html`<span class="chip unbonding" title="${eth(row.unbonding)} unbonding">${row.withdrawable ? "withdrawable" : "unbonding"}</span>` : ""}${row.slashed
    ? html`<span class="chip slashed">slashed${row.timesSlashed > 1 ? ` ×${row.timesSlashed}` : ""}</span>` : ""}`;
}

export function kpi(label, value, sub = "", attrs = "") {
  return html`<div class="kpi" ${attrs}><div class="kpi-label">${label}</div><div class="kpi-value">${value}</div><div class="kpi-sub">${sub}</div></div>`;
}

export function emptyState(title, detail) {
  return html`<div class="empty"><div class="empty-title">${title}</div><div class="empty-detail">${detail}</div></div>`;
}

export const CATEGORIES = {
  servers: ["ServerRegistered", "ServerUpdated", "ServingDeclared", "StakeAdded", "UnstakeRequested", "Withdrawn", "StatusChanged",
    "WeightSet"],
  work: ["WorkCommitted", "SeedShareCommitted", "SeedShareRevealed", "SeedDrawn", "LossDeclared"],
  scores: ["ScoresCommitted", "ScoresRevealed", "ServerScored"],
  slashing: ["Slashed", "SlashDeposited"],
  verifiers: ["VerifierStaked", "VerifierUnstakeRequested", "VerifierWithdrawn", "VerifierSlashed", "NoRevealPenalized",
    "SeedWithheldPenalized", "DeviationPenalized", "VerifierAdded", "VerifierRemoved", "VerifierEndpointAnnounced"],
  rewards: ["EpochFunded", "RewardsClaimed", "PoolRolledOver"],
  payments: ["PriceAnnounced", "Deposited", "WithdrawalRequested", "Redeemed", "FeesWithdrawn"],
  challenges: ["Challenged", "ChallengeAnswered", "ChallengeUpheld", "BondWithdrawn"],
  governance: ["ParameterSet", "Paused", "Unpaused"],
};
const FRACTION_PARAMS = new Set(["theta", "slashFraction", "weight"]);
const CATEGORY_OF = Object.fromEntries(Object.entries(CATEGORIES).flatMap(([c, names]) => names.map((n) => [n, c])));

/** Payments' Withdrawn (a client leaving with its deposit) shares its name with ServerRegistry's (a server's stake). */
const clientWithdrawal = (ev) => ev.name === "Withdrawn" && ev.contract === "Payments";

/** The feed's category of an event (a key of CATEGORIES, or "other"). */
export function categoryOf(ev) {
  return clientWithdrawal(ev) ? "payments" : CATEGORY_OF[ev.name] || "other";
}

/** Which answer a challenge event is about, from the Challenged event that opened it. */
function challengedAnswer(ev) {
  const c = ev.challenge;
  return c ? html`signed answer #${c.index} of epoch ${c.epoch}` : html`signed answer (challenge ${ev.args.id.slice(0, 10)}…)`;
}

function bytes32Text(hex) {
  const bytes = hex.slice(2).match(/../g).map((b) => parseInt(b, 16)).filter((b) => b !== 0);
  return String.fromCharCode(...bytes);
}

/** One line that says what an event means, with links to the servers it names. */
export function describe(ev) {
  const a = ev.args;
  const srv = a.server ? serverLink(a.server) : "";
  switch (ev.name) {
    case "ServerRegistered":
      return html`${srv} registered layers ${span(a.firstLayer, a.numLayers)} at <span class="endpoint">${a.endpoint}</span>, staking ${eth(a.stake)}`;
    case "ServerUpdated":
      return html`${srv} moved to layers ${span(a.firstLayer, a.numLayers)} at <span class="endpoint">${a.endpoint}</span>`;
    case "ServingDeclared":
      return html`${srv} declared it computes in ${servingLabel(a.dtype, a.weights)} from epoch ${a.fromEpoch}`;
    case "StakeAdded":
      return html`${srv} added ${eth(a.amount)} (stake ${eth(a.stake)})`;
    case "UnstakeRequested":
      return html`${srv} started unbonding ${eth(a.amount)} (${eth(a.unbonding)} unbonding)`;
    case "Withdrawn":
      if (clientWithdrawal(ev)) return html`client ${accountText(a.client)} withdrew ${eth(a.amount)} of its deposit`;
      return html`${srv} withdrew ${eth(a.amount)}`;
    case "StatusChanged":
      return html`${srv} ${STATUSES[a.from]} → <b>${STATUSES[a.to]}</b> (epoch ${a.epoch})`;
    case "Slashed":
      return html`${srv} <b>slashed ${eth(a.amount)}</b> in epoch ${a.epoch}; ${eth(a.stakeLeft)} stake left`;
    case "WeightSet":
      return html`${srv} weight w = ${decimal18(a.weight)}`;
    case "WorkCommitted":
      return html`${srv} committed ${a.workUnits} work units for epoch ${a.epoch} (layers ${span(a.firstLayer, a.numLayers)})`;
    case "SeedShareCommitted":
      return html`verifier ${accountText(a.verifier)} committed a seed share for epoch ${a.epoch}`;
    case "SeedShareRevealed":
      return html`verifier ${accountText(a.verifier)} revealed its seed share for epoch ${a.epoch}`;
    case "SeedDrawn":
      return html`sampling seed of epoch ${a.epoch} drawn by ${accountText(a.drawer)}`;
    case "ScoresCommitted":
      return html`verifier ${accountText(a.verifier)} committed scores for epoch ${a.epoch}`;
    case "ScoresRevealed":
      return html`verifier ${accountText(a.verifier)} revealed ${a.servers.length} accuracies for epoch ${a.epoch}`;
    case "ServerScored":
      return html`${srv} scored S = ${frac(a.score)} (acc ${frac(a.acc)}) in epoch ${a.epoch}: <span class="outcome o-${a.outcome}">${OUTCOMES[a.outcome]}</span>`;
    case "VerifierStaked":
      return html`verifier ${accountText(a.verifier)} staked ${eth(a.amount)} (${eth(a.bonded)} bonded)`;
    case "VerifierUnstakeRequested":
      return html`verifier ${accountText(a.verifier)} started unbonding ${eth(a.amount)} (${eth(a.unbonding)} unbonding)`;
    case "VerifierWithdrawn":
      return html`verifier ${accountText(a.verifier)} withdrew ${eth(a.amount)}`;
    case "VerifierEndpointAnnounced":
      return a.endpoint
        ? html`verifier ${accountText(a.verifier)} takes clients' signed answers at <span class="endpoint">${a.endpoint}</span>`
        : html`verifier ${accountText(a.verifier)} no longer takes clients' signed answers`;
    case "VerifierSlashed":
      return html`verifier ${accountText(a.verifier)} <b>slashed ${eth(a.amount)}</b> for epoch ${a.epoch}; ${eth(a.bonded)} bonded left`;
    case "NoRevealPenalized":
      return html`verifier ${accountText(a.verifier)} penalized ${eth(a.amount)}: committed scores for epoch ${a.epoch} and never revealed them`;
    case "SeedWithheldPenalized":
      return html`verifier ${accountText(a.verifier)} penalized ${eth(a.amount)}: withheld its seed share of epoch ${a.epoch}`;
    case "DeviationPenalized":
      return html`verifier ${accountText(a.verifier)} penalized ${eth(a.amount)}: revealed acc ${frac(a.accuracy)} for ${srv} in epoch ${a.epoch}, median ${frac(a.median)}`;
    case "VerifierAdded":
      return html`verifier ${accountText(a.verifier)} paid from epoch ${a.epoch}'s pool (revealed its scores)`;
    case "VerifierRemoved":
      return html`verifier ${accountText(a.verifier)} no longer paid from epoch ${a.epoch}'s pool (more than κ from a median)`;
    case "EpochFunded":
      return html`${accountText(a.funder)} funded epoch ${a.epoch} with ${eth(a.amount)}`;
    case "SlashDeposited":
      return html`${eth(a.amount)} slashed from ${srv} added to epoch ${a.epoch}'s pool`;
    case "RewardsClaimed":
      if (ev.verifierPay) return html`verifier ${accountText(a.server)} claimed ${eth(a.amount)} of verifier pay for epoch ${a.epoch}`;
      return html`${srv} claimed ${eth(a.amount)} for epoch ${a.epoch}`;
    case "PoolRolledOver":
      return html`pool of epoch ${a.fromEpoch} (${eth(a.amount)}) rolled into epoch ${a.toEpoch}`;
    case "PriceAnnounced":
      return html`${srv} announced its price: ${price(a.pricePerTokenLayer)} per token-layer`;
    case "Deposited":
      return html`client ${accountText(a.client)} deposited ${eth(a.amount)} to pay servers with (${eth(a.available)} available)`;
    case "WithdrawalRequested":
      return html`client ${accountText(a.client)} asked to withdraw ${eth(a.amount)} of its deposit (${eth(a.pending)} pending, unlocks ${dateTime(Number(a.unlockTime))})`;
    case "Redeemed":
      return html`${srv} redeemed client ${accountText(a.client)}'s receipt for epoch ${a.epoch}: <b>${wei(a.paid)}</b> in fees${a.paid < a.amount ? html` of ${wei(a.amount)} owed` : ""}`;
    case "FeesWithdrawn":
      return html`${srv} withdrew ${wei(a.amount)} of client fees`;
    case "Challenged":
      return html`${accountText(a.challenger)} challenged ${srv}'s signed answer #${a.index} of epoch ${a.epoch}: its Merkle proof is due by ${dateTime(Number(a.deadline))}`;
    case "ChallengeAnswered":
      return html`${srv} answered the challenge of its ${challengedAnswer(ev)} with its Merkle proof and keeps the ${eth(a.bond)} bond`;
    case "ChallengeUpheld":
      return html`${srv} did not prove its ${challengedAnswer(ev)} committed: <b>challenge upheld</b>, ${a.slashed
        ? html`slashed ${eth(a.slashed)}` : "not slashed again (already deactivated)"}`;
    case "BondWithdrawn":
      return html`${accountText(a.account)} withdrew ${eth(a.amount)} of challenge bonds`;
    case "ParameterSet": {
      const name = bytes32Text(a.name);
      const value = FRACTION_PARAMS.has(name) ? decimal18(a.value) : name === "minStake" ? eth(a.value) : a.value;
      return html`${ev.contract}: ${name} set to ${value}`;
    }
    case "Paused":
    case "Unpaused":
      return html`${ev.contract} ${ev.name.toLowerCase()} by ${accountText(a.account)}`;
    default:
      return html`${ev.name}`;
  }
}

/** The newest `limit` of `events` (oldest first in the array), newest on top. */
export function feed(events, { limit = 50, showTx = true } = {}) {
  if (!events.length) return emptyState("No events yet", "Registrations, commitments, scores and claims appear here as they happen.");
  const rows = [];
  for (let i = events.length - 1; i >= 0 && rows.length < limit; i--) {
    const ev = events[i];
    const cat = categoryOf(ev);
    rows.push(html`<li class="ev cat-${cat}" data-event="${ev.name}" data-block="${ev.block}" data-tx="${ev.tx}" data-log-index="${ev.index}"${
      ev.args.server && !ev.verifierPay ? html` data-server="${ev.args.server}"` : ""}>
      <span class="ev-kind">${ev.name}</span>
      <span class="ev-text">${describe(ev)}</span>
      <span class="ev-meta">block ${ev.block}${showTx ? html` · <span class="tx" title="${ev.tx}">${ev.tx.slice(0, 10)}…</span>` : ""}</span>
    </li>`);
  }
  return html`<ol class="feed">${rows}</ol>`;
}

export function layersText(counts) {
  const missing = counts.map((c, i) => (c === 0 ? i : -1)).filter((i) => i >= 0);
  return missing.length ? `uncovered: ${compactLayers(missing)}` : "every layer covered";
}
