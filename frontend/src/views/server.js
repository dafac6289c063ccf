// A page per server (#/server/<address>): its record, its score, stake and reward history, its client fees and price,
// and its events.
import { checksum } from "../abi.js";
import { html } from "../dom.js";
import { dateTime, decimal18, duration, eth, frac, int, price, span, wei } from "../format.js";
import { lineChart } from "../charts.js";
import { Outcome, OUTCOMES } from "../schema.js";
import { rewardPoints, scorePoints, stakePoints } from "../model.js";
import { emptyState, feed, kpi, statusBadges } from "./parts.js";

const ethNum = (wei) => Number(wei) / 1e18;
const fmtEth = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(3).replace(/\.?0+$/, ""));

export function mount(root, { address }) {
  root.innerHTML = `<div id="server-page" class="stack" data-address="${address}"></div>`;
}

export function update(root, model, { address }) {
  const row = model.servers.find((r) => r.address === address);
  const target = root.querySelector("#server-page");
  if (!row) {
    target.innerHTML = html`<p><a href="#/">← All servers</a></p>${emptyState("Unknown server",
      `No server with address ${address} is registered in this deployment.`)}`.text;
    return;
  }
  const theta = model.snapshot.params.theta;
  const s = row.last;
  const charts = serverCharts(model, row);
  target.innerHTML = html`
    <p class="crumbs"><a href="#/">← All servers</a></p>
    <section class="card server-head">
      <div><h1 class="mono">${checksum(row.address)}</h1>
        <div class="endpoint big">${row.endpoint}</div></div>
      <div class="head-badges">${statusBadges(row)}<span class="chip">layers ${span(row.firstLayer, row.numLayers)}</span><span class="chip" data-kpi="serving" title="declared on chain (IServerRegistry.declareServing); verifiers recompute so">${row.serving}</span></div>
    </section>
    <section class="kpis">
      ${kpi("Stake", html`<span data-kpi="stake" data-value="${row.stake}">${eth(row.stake)}</span>`, `min ${eth(model.snapshot.params.minStake)}`)}
      ${kpi("Unbonding", html`<span data-kpi="unbonding" data-value="${row.unbonding}">${eth(row.unbonding)}</span>`,
        row.unbonding ? (row.withdrawable ? "withdrawable now" : `unlocks in ${duration(row.unlockTime - model.now)}`) : "nothing unbonding")}
      ${kpi("Trust score", s ? html`<span data-kpi="score" data-value="${s.score}" class="score ${s.score >= theta ? "pass" : "fail"}">${frac(s.score)}</span>` : "—",
        s ? `epoch ${s.epoch}: ${OUTCOMES[s.outcome]} · acc ${frac(s.acc)} · θ ${frac(theta)}` : "not scored yet")}
      ${kpi("Work units", html`<span data-kpi="work" data-value="${row.workUnits}">${int(row.workUnits)}</span>`,
        row.lastWork ? `${int(row.lastWork.workUnits)} in epoch ${row.lastWork.epoch}` : "no work committed")}
      ${kpi("Pending rewards", html`<span data-kpi="pending" data-value="${row.pending}">${eth(row.pending)}</span>`,
        html`<span data-kpi="claimed" data-value="${row.claimed}">${eth(row.claimed)}</span> claimed · ${eth(row.earned)} earned`)}
      ${kpi("Client fees", html`<span data-kpi="fees" data-value="${row.feesRedeemed}">${wei(row.feesRedeemed)}</span>`,
        html`redeemed · <span data-kpi="fees-withdrawn" data-value="${row.feesWithdrawn}" title="${row.feesHeld} wei still in Payments">${wei(row.feesWithdrawn)}</span> withdrawn`)}
      ${kpi("Price", html`<span data-kpi="price" data-value="${row.price ?? ""}">${price(row.price)}</span>`,
        row.price === null ? "no price announced" : `per token-layer (${row.price} wei)`)}
      ${kpi("Slashed", html`<span data-kpi="slashes">${row.timesSlashed}</span>×`, `${eth(row.totalSlashed)} in all`)}
      ${kpi("Weight w", decimal18(row.weight), `registered in epoch ${row.registeredEpoch} · active since ${row.activeSince}`)}
    </section>
    <section class="grid three">
      <div class="card"><h2>Trust score and accuracy</h2>${charts.score}</div>
      <div class="card"><h2>Stake by epoch</h2>${charts.stake}</div>
      <div class="card"><h2>Cumulative rewards</h2>${charts.rewards}</div>
    </section>
    <section class="card"><h2>History by epoch</h2>${epochTable(model, row)}</section>
    <section class="card"><h2>Events</h2>${feed(row.history.events, { limit: 200 })}</section>`.text;
}

function serverCharts(model, row) {
  const theta = Number(model.snapshot.params.theta) / 1e18;
  const scores = scorePoints(row);
  const stake = stakePoints(model, row);
  const rewards = rewardPoints(model, row);
  return {
    score: lineChart({
      id: "server-score", title: "Trust score and accuracy", yMin: 0, yMax: 1.05, yFormat: (v) => v.toFixed(2),
      xMin: stake.length ? stake[0].epoch : undefined, xMax: model.epochs.current,
      refLines: [{ y: theta, label: `θ = ${theta}` }], empty: "Not scored yet.",
      series: [
        { key: "score", label: "S (trust score)", color: "#4f46e5", points: scores.map((p) => [p.epoch, Number(p.score) / 1e18]),
          raw: scores.map((p) => ({ epoch: p.epoch, score: p.score.toString(), outcome: p.outcome })) },
        { key: "acc", label: "acc (median)", color: "#94a3b8", width: 1.5, points: scores.map((p) => [p.epoch, Number(p.acc) / 1e18]),
          raw: scores.map((p) => ({ epoch: p.epoch, acc: p.acc.toString() })) },
      ],
    }),
    stake: lineChart({
      id: "server-stake", title: "Stake by epoch", yFormat: fmtEth, empty: "No stake history.",
      series: [
        { key: "stake", label: "bonded (ETH)", color: "#0891b2", points: stake.map((p) => [p.epoch, ethNum(p.stake)]),
          raw: stake.map((p) => ({ epoch: p.epoch, stake: p.stake.toString(), unbonding: p.unbonding.toString() })) },
        { key: "unbonding", label: "unbonding (ETH)", color: "#d97706", points: stake.map((p) => [p.epoch, ethNum(p.unbonding)]) },
      ],
    }),
    rewards: lineChart({
      id: "server-rewards", title: "Cumulative rewards", yFormat: fmtEth, empty: "No rewards earned yet.",
      series: rewards.some((p) => p.earned > 0n) ? [
        { key: "earned", label: "earned (ETH)", color: "#16a34a", points: rewards.map((p) => [p.epoch, ethNum(p.earned)]),
          raw: rewards.map((p) => ({ epoch: p.epoch, earned: p.earned.toString(), claimed: p.claimed.toString() })) },
        { key: "claimed", label: "claimed (ETH)", color: "#d97706", points: rewards.map((p) => [p.epoch, ethNum(p.claimed)]) },
      ] : [],
    }),
  };
}

function epochTable(model, row) {
  const h = row.history;
  const epochs = [...new Set([...h.work.keys(), ...h.scores.keys(), ...h.claims.keys(), ...h.fees.byEpoch.keys()])].sort((a, b) => b - a);
  if (!epochs.length) return emptyState("No history yet", "Work commitments, scores, claims and client fees of this server appear here by epoch.");
  return html`<div class="table-wrap"><table class="history"><thead><tr><th>Epoch</th><th>Layers</th><th class="num">Work units</th>
    <th class="num">Acc</th><th class="num">S</th><th>Outcome</th><th class="num">Share</th><th class="num">Claimed</th><th class="num">Fees</th></tr></thead><tbody>
    ${epochs.map((e) => {
      const w = h.work.get(e);
      const sc = h.scores.get(e);
      const share = sc && sc.rewardWeight > 0n ? model.shareOf(e, sc.rewardWeight) : 0n;
      const claimed = h.claims.get(e);
      const fees = h.fees.byEpoch.get(e);
      const scored = sc && sc.outcome !== Outcome.NoQuorum;
      return html`<tr data-epoch="${e}">
        <td>${e}</td><td>${w ? span(w.firstLayer, w.numLayers) : "—"}</td>
        <td class="num" data-col="work" data-value="${w ? w.workUnits : ""}">${w ? int(w.workUnits) : "—"}</td>
        <td class="num" data-col="acc" data-value="${scored ? sc.acc : ""}">${scored ? frac(sc.acc) : "—"}</td>
        <td class="num" data-col="score" data-value="${scored ? sc.score : ""}">${scored ? frac(sc.score) : "—"}</td>
        <td data-col="outcome">${sc ? html`<span class="outcome o-${sc.outcome}">${OUTCOMES[sc.outcome]}</span>` : model.settled(e) ? "not finalized" : "pending"}</td>
        <td class="num" data-col="share" data-value="${share}">${share ? eth(share) : "—"}</td>
        <td class="num" data-col="claimed" data-value="${claimed ?? ""}">${claimed ? eth(claimed) : share && model.settled(e) ? "claimable" : "—"}</td>
        <td class="num" data-col="fees" data-value="${fees ?? ""}" title="client fees redeemed for the epoch">${fees ? wei(fees) : "—"}</td>
      </tr>`;
    })}</tbody></table></div>
    <p class="muted small">Registered at block ${h.registeredBlock ?? "?"}${h.registeredBlock && model.history.timestamps.has(h.registeredBlock)
      ? `, ${dateTime(model.history.timestamps.get(h.registeredBlock))}` : ""}.</p>`;
}
