// Epochs: the reward pool of each epoch (funded, slashed, rolled in, claimed), what happened in it, and the
// protocol's parameters and contracts.
import { checksum } from "../abi.js";
import { html } from "../dom.js";
import { dateTime, decimal18, duration, eth, int } from "../format.js";
import { barChart } from "../charts.js";
import { PHASES, SLASHING_RULES } from "../schema.js";
import { epochPanel } from "./overview.js";

const ethNum = (wei) => Number(wei) / 1e18;
const PAGE = 60;
let shown = PAGE;

export function mount(root, { onChange }) {
  shown = PAGE;
  root.innerHTML = `
    <section class="grid two">
      <div class="card"><h2>Epoch</h2><div id="epoch"></div></div>
      <div class="card"><h2>Parameters</h2><div id="params"></div></div>
    </section>
    <section class="card"><h2>Reward pool by epoch</h2><div id="chart-pools"></div></section>
    <section class="card"><h2>Epochs</h2><div id="epoch-table"></div></section>
    <section class="card"><h2>Contracts</h2><div id="contracts"></div></section>`;
  root.addEventListener("click", (e) => {
    if (e.target.id === "more-epochs") {
      shown += PAGE;
      onChange();
    }
  });
}

export function update(root, model, { chartsChanged, deployment }) {
  root.querySelector("#epoch").innerHTML = epochPanel(model).text;
  root.querySelector("#params").innerHTML = params(model).text;
  if (chartsChanged) {
    const bars = model.pools.map((p) => ({
      x: p.epoch,
      parts: [
        { key: "funded", value: ethNum(p.funded || 0n) },
        { key: "slashed", value: ethNum(p.slashed || 0n) },
        { key: "rolledIn", value: ethNum(p.rolledIn || 0n) },
      ],
    }));
    root.querySelector("#chart-pools").innerHTML = barChart({
      id: "pools", title: "Reward pool by epoch", bars, yFormat: (v) => `${+v.toFixed(3)}`, width: 1280, height: 240,
      keys: [{ key: "funded", label: "funded (ETH)", color: "#4f46e5" }, { key: "slashed", label: "slashed stake (ETH)", color: "#dc2626" },
        { key: "rolledIn", label: "rolled over (ETH)", color: "#0d9488" }],
      empty: "No epoch has a pool yet: clients fund epochs with fundEpoch.",
    }).text;
  }
  root.querySelector("#epoch-table").innerHTML = epochTable(model).text;
  root.querySelector("#contracts").innerHTML = html`<div class="table-wrap"><table class="kv"><tbody>
    ${Object.entries(deployment.contracts).map(([name, c]) => html`<tr><th>${name}</th><td class="mono">${checksum(c.address.toLowerCase())}</td></tr>`)}
    <tr><th>Governor</th><td class="mono">${deployment.governor}</td></tr>
    <tr><th>Deployed at block</th><td>${deployment.block}</td></tr></tbody></table></div>`.text;
}

function params(model) {
  const p = model.snapshot.params;
  const s = model.schedule;
  const rows = [
    ["Model layers", p.numLayers],
    ["Minimum stake", eth(p.minStake)],
    ["Unbonding period", duration(p.unbondingPeriod)],
    ["Slash fraction", decimal18(p.slashFraction)],
    ["θ (trust threshold)", decimal18(p.theta)],
    ["Slashing rule", `${SLASHING_RULES[p.slashingRule]} below θ`],
    ["Minimum verifiers", p.minVerifiers],
    ["Immunity epochs", p.immunityEpochs],
    ["Verifier share", `${decimal18(p.verifierShare)} of each pool`],
    ["Epoch length", duration(s.epochLength)],
    ["Windows", `commit work ${duration(s.commitWork)} · scores ${duration(s.commitScores)} · reveal ${duration(s.reveal)} · finalize ${duration(s.finalize)}`],
    ["Genesis", dateTime(s.genesis)],
  ];
  const paused = model.snapshot.paused;
  return html`<table class="kv" id="param-table"><tbody>${rows.map(([k, v]) => html`<tr><th>${k}</th><td data-param="${k}">${v}</td></tr>`)}</tbody></table>
    ${paused.length ? html`<p class="warn">Paused: ${paused.join(", ")}</p>` : ""}`;
}

function epochTable(model) {
  const pools = [...model.pools].reverse().slice(0, shown);
  return html`<div class="table-wrap"><table class="epochs"><thead><tr><th>Epoch</th><th>Phase</th><th class="num">Pool</th>
    <th class="num">Funded</th><th class="num">Slashed</th><th class="num">Rolled in</th><th class="num">Claimed</th>
    <th class="num">Servers committed</th><th class="num">Work units</th><th class="num">Seed shares</th><th class="num">Reveals</th><th class="num">Scored</th><th class="num">Slashes</th>
    <th class="num">Verifiers paid</th><th class="num">Verifier pot</th></tr></thead>
    <tbody>${pools.map((p) => html`<tr data-epoch="${p.epoch}">
      <td>${p.epoch}</td><td><span class="phase p-${p.phase}">${PHASES[p.phase]}</span>${p.rolledOut ? html` <span class="chip">rolled out</span>` : ""}</td>
      <td class="num" data-col="size" data-value="${p.size}">${eth(p.size)}</td>
      <td class="num" data-col="funded" data-value="${p.funded || 0n}">${eth(p.funded || 0n)}</td>
      <td class="num" data-col="slashed" data-value="${p.slashed || 0n}">${eth(p.slashed || 0n)}</td>
      <td class="num" data-col="rolledIn" data-value="${p.rolledIn || 0n}">${eth(p.rolledIn || 0n)}</td>
      <td class="num" data-col="claimed" data-value="${p.claimed || 0n}">${eth(p.claimed || 0n)}</td>
      <td class="num" data-col="committed">${p.committed || 0}</td>
      <td class="num" data-col="work">${int(p.workUnits || 0n)}</td>
      <td class="num" data-col="seedShares" title="revealed / committed">${p.seedReveals || 0} / ${p.seedShares || 0}</td>
      <td class="num" data-col="reveals">${p.reveals || 0}</td>
      <td class="num" data-col="scored">${p.scored || 0}</td>
      <td class="num" data-col="slashes">${p.slashes || 0}</td>
      <td class="num" data-col="verifiers">${p.verifiers || 0}</td>
      <td class="num" data-col="verifierPot" data-value="${p.verifierPot}">${eth(p.verifierPot)}</td></tr>`)}</tbody></table></div>
    ${model.pools.length > shown ? html`<button class="more" id="more-epochs">Show older epochs</button>` : ""}`;
}
