// The overview: key figures, the epoch clock, layer coverage, charts, the sortable server table and the
// latest events. The skeleton is mounted once; each new block fills its parts in place, so the filter box
// keeps its focus and the table its sort order while the data changes under them.
import { html } from "../dom.js";
import { dateTime, decimal18, duration, eth, frac, int, price, short, span, wei } from "../format.js";
import { lineChart } from "../charts.js";
import { OUTCOMES, PHASES } from "../schema.js";
import { STATUS_ORDER, networkPoints, scorePoints } from "../model.js";
import { emptyState, feed, kpi, layersText, serverLink, statusBadges } from "./parts.js";

const ethNum = (wei) => Number(wei) / 1e18;
const fmtEth = (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)}k` : v >= 10 ? v.toFixed(0) : v.toFixed(2).replace(/\.?0+$/, ""));

const COLUMNS = [
  { key: "address", label: "Server", value: (r) => r.address },
  { key: "layers", label: "Layers", value: (r) => r.firstLayer * 10000 + r.numLayers },
  { key: "status", label: "Status", value: (r) => STATUS_ORDER[r.status] * 4 + (r.slashed ? 2 : 0) + (r.unbondingFlag ? 1 : 0) },
  { key: "stake", label: "Stake", value: (r) => r.stake, num: true },
  { key: "unbonding", label: "Unbonding", value: (r) => r.unbonding, num: true },
  { key: "acc", label: "Acc", value: (r) => (r.last ? r.last.acc : -1n), num: true },
  { key: "score", label: "S vs θ", value: (r) => (r.last ? r.last.score : -1n), num: true },
  { key: "work", label: "Work units", value: (r) => r.workUnits, num: true },
  { key: "pending", label: "Pending", value: (r) => r.pending, num: true },
  { key: "claimed", label: "Claimed", value: (r) => r.claimed, num: true },
  { key: "fees", label: "Fees", value: (r) => r.feesRedeemed, num: true },
  { key: "price", label: "Price", value: (r) => (r.price === null ? -1n : r.price), num: true },
  { key: "slashes", label: "Slashed", value: (r) => r.timesSlashed, num: true },
];

const sort = { key: "address", dir: 1 };
let filter = "";

function cmp(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function mount(root, { onChange }) {
  root.innerHTML = `
    <section class="kpis" id="kpis"></section>
    <section class="grid two">
      <div class="card"><h2>Epoch</h2><div id="epoch"></div></div>
      <div class="card"><h2>Layer coverage <span class="muted" id="coverage-note"></span></h2><div id="coverage"></div><div id="coverage-stats"></div></div>
    </section>
    <section class="grid three" id="charts">
      <div class="card"><h2>Trust score S<sub>i</sub> by epoch</h2><div id="chart-scores"></div></div>
      <div class="card"><h2>Bonded stake by epoch</h2><div id="chart-stake"></div></div>
      <div class="card"><h2>Cumulative rewards</h2><div id="chart-rewards"></div></div>
    </section>
    <section class="card">
      <div class="card-head"><h2>Servers <span class="muted" id="server-count"></span></h2>
        <div class="table-tools"><input id="server-filter" class="search" type="search" placeholder="Filter by address, endpoint or status" aria-label="Filter servers">
        <select id="server-sort" class="phone-only" aria-label="Sort servers">${COLUMNS.map((c) => `<option value="${c.key}">Sort: ${c.label}</option>`).join("")}</select></div></div>
      <div class="table-wrap"><table class="servers" id="servers"><thead><tr>${COLUMNS.map((c) =>
        `<th data-sort="${c.key}"${c.num ? ' class="num"' : ""} tabindex="0">${c.label}</th>`).join("")}</tr></thead><tbody></tbody></table></div>
    </section>
    <section class="card"><div class="card-head"><h2>Latest events</h2><a href="#/events">All events →</a></div><div id="recent"></div></section>`;
  const head = root.querySelector("#servers thead");
  const choose = (th) => {
    if (!th) return;
    const key = th.dataset.sort;
    sort.dir = sort.key === key ? -sort.dir : COLUMNS.find((c) => c.key === key).num ? -1 : 1;
    sort.key = key;
    onChange();
  };
  head.addEventListener("click", (e) => choose(e.target.closest("th")));
  head.addEventListener("keydown", (e) => e.key === "Enter" && choose(e.target.closest("th")));
  const picker = root.querySelector("#server-sort");
  picker.value = sort.key;
  picker.addEventListener("change", () => {
    sort.key = picker.value;
    sort.dir = COLUMNS.find((c) => c.key === sort.key).num ? -1 : 1;
    onChange();
  });
  const box = root.querySelector("#server-filter");
  box.value = filter;
  box.addEventListener("input", () => {
    filter = box.value.trim().toLowerCase();
    onChange();
  });
}

export function update(root, model, { chartsChanged }) {
  const { snapshot, servers, epochs } = model;
  const active = servers.filter((r) => r.status === "active").length;
  const covered = snapshot.coverage.filter((c) => c > 0).length;
  const pool = model.pools[epochs.current];
  root.querySelector("#kpis").innerHTML = html`
    ${kpi("Servers", html`<span data-kpi="active">${active}</span> active`, `${servers.length} registered`)}
    ${kpi("Bonded stake", eth(snapshot.totals.bonded), `${eth(snapshot.totals.unbonding)} unbonding`)}
    ${kpi("Coverage", html`<span data-kpi="covered">${covered}</span>/${snapshot.coverage.length} layers`, layersText(snapshot.coverage))}
    ${kpi("Epoch", html`<span data-kpi="epoch">${epochs.current}</span>`, `${PHASES[epochs.phase].toLowerCase()} · ${duration(epochs.windows.workEnd - model.now)} left`)}
    ${kpi("Pool this epoch", eth(pool.size), `${eth(snapshot.totals.funded)} funded in all`)}
    ${kpi("Rewards paid", eth(snapshot.totals.paid), `${eth(snapshot.totals.slashed)} slashed in all`)}
    ${kpi("Client fees", html`<span data-kpi="fees" data-value="${model.history.payments.redeemed}">${wei(model.history.payments.redeemed)}</span>`,
      html`<span data-kpi="fees-held" data-value="${snapshot.totals.feesHeld}">${wei(snapshot.totals.feesHeld)}</span> still in Payments`)}`.text;
  root.querySelector("#epoch").innerHTML = epochPanel(model).text;
  root.querySelector("#coverage").innerHTML = coverageStrip(snapshot.coverage).text;
  root.querySelector("#coverage-note").textContent = layersText(snapshot.coverage);
  root.querySelector("#coverage-stats").innerHTML = coverageStats(model).text;
  if (chartsChanged) {
    const charts = overviewCharts(model);
    root.querySelector("#chart-scores").innerHTML = charts.scores.text;
    root.querySelector("#chart-stake").innerHTML = charts.stake.text;
    root.querySelector("#chart-rewards").innerHTML = charts.rewards.text;
  }
  root.querySelector("#server-count").textContent = `${active} active of ${servers.length}`;
  root.querySelectorAll("#servers th").forEach((th) => {
    th.dataset.dir = th.dataset.sort === sort.key ? (sort.dir > 0 ? "asc" : "desc") : "";
  });
  root.querySelector("#servers tbody").innerHTML = serverRows(model).text;
  root.querySelector("#recent").innerHTML = feed(model.history.events, { limit: 12 }).text;
}

const SEGMENTS = [["Work", "workStart", "workEnd"], ["Commit work", "workEnd", "commitWorkEnd"],
  ["Commit scores", "commitWorkEnd", "commitScoresEnd"], ["Reveal", "commitScoresEnd", "revealEnd"], ["Finalize", "revealEnd", "finalizeEnd"]];

/** An epoch's windows as one bar (widths in proportion to their lengths) with a marker at the chain's time. */
function timeline(w, now, phase) {
  const total = w.finalizeEnd - w.workStart;
  const at = Math.min(1, Math.max(0, (now - w.workStart) / total));
  return html`<div class="timeline">${SEGMENTS.map(([label, a, b], i) => html`<div class="seg${phase === i + 1 ? " now" : phase > i + 1 ? " done" : ""}"
    style="flex:${w[b] - w[a]}" title="${label}: ${duration(w[b] - w[a])}"><span>${label}</span></div>`)}<i class="marker" style="left:${(at * 100).toFixed(2)}%"></i></div>`;
}

export function epochPanel(model) {
  const { epochs, now } = model;
  const w = epochs.windows;
  const settling = epochs.settling.map((s) => {
    const ends = [null, s.windows.workEnd, s.windows.commitWorkEnd, s.windows.commitScoresEnd, s.windows.revealEnd, s.windows.finalizeEnd];
    return html`<li data-epoch="${s.epoch}" data-phase="${PHASES[s.phase]}"><div class="epoch-line"><b>Epoch ${s.epoch}</b>
      <span class="phase p-${s.phase}">${PHASES[s.phase]}</span><span class="muted">ends in ${duration(ends[s.phase] - now)}</span></div>
      ${timeline(s.windows, now, s.phase)}</li>`;
  });
  return html`<div class="epoch-now" data-epoch="${epochs.current}" data-phase="${PHASES[epochs.phase]}">
      <div class="epoch-line"><span class="epoch-num">Epoch ${epochs.current}</span><span class="phase p-${epochs.phase}">${PHASES[epochs.phase]}</span>
        <span class="muted">${duration(w.workEnd - now)} of work left</span></div>
      ${timeline(w, now, epochs.phase)}
    </div>
    ${settling.length ? html`<ul class="settling">${settling}</ul>` : html`<p class="muted small">No earlier epoch is settling.</p>`}
    <p class="muted small">Block ${model.snapshot.block.number.toLocaleString("en-US")} at ${dateTime(now)} (chain time).
      An epoch's windows run on while the next epochs work; its rewards are claimable once settled.</p>`;
}

export function coverageStrip(counts) {
  const max = Math.max(1, ...counts);
  return html`<div class="coverage" style="--n:${counts.length}">${counts.map((c, layer) =>
    html`<div class="layer${c === 0 ? " uncovered" : ""}" data-layer="${layer}" data-count="${c}" title="layer ${layer}: ${c} active server${c === 1 ? "" : "s"}"
      style="--level:${(c / max).toFixed(3)}"><span>${c}</span></div>`)}</div>
    <div class="coverage-axis"><span>layer 0</span><span>${counts.length - 1}</span></div>`;
}

function coverageStats(model) {
  const counts = model.snapshot.coverage;
  const fewest = Math.min(...counts);
  const most = Math.max(...counts);
  const spans = model.servers.filter((r) => r.status === "active").map((r) => r.numLayers);
  return html`<dl class="stats">
    <div><dt>Longest active span, max(l)</dt><dd>${model.snapshot.maxActiveSpan} layers</dd></div>
    <div><dt>Shortest active span</dt><dd>${spans.length ? Math.min(...spans) : 0} layers</dd></div>
    <div><dt>Servers on a layer</dt><dd>${fewest === most ? fewest : `${fewest} to ${most}`}</dd></div>
    <div><dt>Layers served twice or more</dt><dd>${counts.filter((c) => c >= 2).length} of ${counts.length}</dd></div>
  </dl><div class="legend"><span><i class="sw covered"></i>active servers on the layer</span><span><i class="sw uncovered"></i>uncovered: no active server</span></div>`;
}

function serverRows(model) {
  const theta = model.snapshot.params.theta;
  let rows = model.servers;
  if (filter) {
    rows = rows.filter((r) => r.address.includes(filter) || r.endpoint.toLowerCase().includes(filter) || r.status.includes(filter)
      || (filter === "slashed" && r.slashed) || (filter === "unbonding" && r.unbondingFlag));
  }
  if (!model.servers.length) {
    return html`<tr><td colspan="${COLUMNS.length}">${emptyState("No servers registered yet",
      "Servers appear here once they stake and register a span of layers (efedllm server …).")}</td></tr>`;
  }
  if (!rows.length) return html`<tr><td colspan="${COLUMNS.length}" class="muted">No server matches “${filter}”.</td></tr>`;
  const col = COLUMNS.find((c) => c.key === sort.key);
  rows = [...rows].sort((a, b) => sort.dir * cmp(col.value(a), col.value(b)) || cmp(a.address, b.address));
  return html`${rows.map((r) => {
    const s = r.last;
    const pass = s && s.score >= theta;
    return html`<tr data-address="${r.address}" data-status="${r.status}">
      <td data-col="address" data-label="Server">${serverLink(r.address)}<div class="endpoint">${r.endpoint}</div></td>
      <td data-col="layers" data-label="Layers" data-value="${span(r.firstLayer, r.numLayers)}" data-serving="${r.serving}" title="declared on chain: computes in ${r.serving}">${span(r.firstLayer, r.numLayers)}<div class="sub">${r.serving}</div></td>
      <td data-col="status" data-label="Status" data-value="${r.status}" data-flags="${[r.slashed && "slashed", r.unbondingFlag && "unbonding"].filter(Boolean).join(" ")}">${statusBadges(r)}</td>
      <td class="num" data-col="stake" data-label="Stake" data-value="${r.stake}" title="${decimal18(r.stake)} ETH">${eth(r.stake)}</td>
      <td class="num" data-col="unbonding" data-label="Unbonding" data-value="${r.unbonding}" title="${r.unbonding ? `unlocks ${new Date(r.unlockTime * 1000).toISOString()}` : ""}">${r.unbonding ? eth(r.unbonding) : "—"}</td>
      <td class="num" data-col="acc" data-label="Acc" data-value="${s ? s.acc : ""}">${s ? frac(s.acc) : "—"}</td>
      <td class="num" data-col="score" data-label="S vs θ" data-value="${s ? s.score : ""}" data-epoch="${s ? s.epoch : ""}">${s
        ? html`<span class="score ${pass ? "pass" : "fail"}" title="epoch ${s.epoch}: ${OUTCOMES[s.outcome]}">${frac(s.score)}</span>
          <span class="theta-bar"><i style="width:${Math.min(100, Number(s.score) / 1e16)}%"></i><b style="left:${Number(theta) / 1e16}%"></b></span>` : "—"}</td>
      <td class="num" data-col="work" data-label="Work units" data-value="${r.workUnits}">${int(r.workUnits)}</td>
      <td class="num" data-col="pending" data-label="Pending" data-value="${r.pending}">${r.pending ? eth(r.pending) : "—"}</td>
      <td class="num" data-col="claimed" data-label="Claimed" data-value="${r.claimed}">${r.claimed ? eth(r.claimed) : "—"}</td>
      <td class="num" data-col="fees" data-label="Fees" data-value="${r.feesRedeemed}" data-withdrawn="${r.feesWithdrawn}"
        title="client fees redeemed: ${r.feesRedeemed} wei, ${r.feesHeld} wei of it still in Payments">${r.feesRedeemed ? wei(r.feesRedeemed) : "—"}${r.feesWithdrawn
        ? html`<div class="sub">${r.feesWithdrawn === r.feesRedeemed ? "all" : wei(r.feesWithdrawn)} withdrawn</div>` : ""}</td>
      <td class="num" data-col="price" data-label="Price" data-value="${r.price ?? ""}" title="${r.price === null ? "no price announced" : `${r.price} wei per token and layer`}">${price(r.price)}</td>
      <td class="num" data-col="slashes" data-label="Slashed" data-value="${r.timesSlashed}">${r.timesSlashed || "—"}</td>
    </tr>`;
  })}`;
}

/** The three overview charts; their data also lands in CHART_DATA (ids scores, stake, rewards). */
export function overviewCharts(model) {
  const theta = Number(model.snapshot.params.theta) / 1e18;
  const many = model.servers.length > 8;
  const palette = ["#4f46e5", "#0891b2", "#16a34a", "#d97706", "#db2777", "#7c3aed", "#0d9488", "#ea580c"];
  const scoreSeries = model.servers.map((r, i) => {
    const points = scorePoints(r);
    return {
      key: r.address,
      label: `${short(r.address)}${r.slashed ? " (slashed)" : ""}`,
      color: r.slashed ? "#dc2626" : many ? "#6366f1" : palette[i % palette.length],
      width: many ? 1.2 : 2,
      dim: many && !r.slashed,
      points: points.map((p) => [p.epoch, Number(p.score) / 1e18]),
      raw: points.map((p) => ({ epoch: p.epoch, score: p.score.toString(), acc: p.acc.toString(), outcome: p.outcome })),
    };
  });
  const net = networkPoints(model);
  const started = net.findIndex((p) => p.stake > 0n);
  const since = started < 0 ? [] : net.slice(started);
  return {
    scores: lineChart({
      id: "scores", title: "Trust score by epoch", series: scoreSeries, yMin: 0, yMax: 1.05, xMin: 0, xMax: model.epochs.current,
      yFormat: (v) => v.toFixed(2), refLines: [{ y: theta, label: `θ = ${theta}` }],
      empty: "No scores yet: they appear when the first epoch is finalized.",
    }),
    stake: lineChart({
      id: "stake", title: "Bonded stake by epoch", yFormat: fmtEth, empty: "No stake yet.",
      series: [{ key: "stake", label: "bonded stake (ETH)", color: "#0891b2", points: since.map((p) => [p.epoch, ethNum(p.stake)]),
        raw: since.map((p) => ({ epoch: p.epoch, stake: p.stake.toString() })) }],
    }),
    rewards: lineChart({
      id: "rewards", title: "Cumulative rewards by epoch", yFormat: fmtEth, empty: "No rewards earned yet.",
      series: net.some((p) => p.earned > 0n) ? [
        { key: "earned", label: "earned (ETH)", color: "#16a34a", points: net.map((p) => [p.epoch, ethNum(p.earned)]),
          raw: net.map((p) => ({ epoch: p.epoch, value: p.earned.toString() })) },
        { key: "claimed", label: "claimed (ETH)", color: "#d97706", points: net.map((p) => [p.epoch, ethNum(p.claimed)]),
          raw: net.map((p) => ({ epoch: p.epoch, value: p.claimed.toString() })) },
      ] : [],
    }),
  };
}
