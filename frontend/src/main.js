// The dashboard: connect (chain, deployment file, network check), read the history once, then follow the
// chain head by polling eth_blockNumber and refresh what changed. Errors that a user can fix (no chain,
// no deployment, wrong network, contracts not on this chain) are full-page states that retry by themselves;
// a lost connection after the page has data keeps the data and shows a banner.
import "./styles.css";
import { DeploymentError, eventDecoders, loadContracts } from "./abi.js";
import { CHART_DATA, installChartHover } from "./charts.js";
import { readSchedule, readSnapshot } from "./chain.js";
import { html, raw } from "./dom.js";
import { History } from "./history.js";
import { buildModel } from "./model.js";
import { Rpc, RpcError } from "./rpc.js";
import * as epochsView from "./views/epochs.js";
import * as eventsView from "./views/events.js";
import * as overviewView from "./views/overview.js";
import * as serverView from "./views/server.js";

const query = new URLSearchParams(location.search);
const RETRY_MS = 3000;

class StateError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

const app = {
  config: {},
  rpc: null,
  deployment: null,
  contracts: null,
  schedule: null,
  history: null,
  model: null,
  head: null,
  mounted: null,
  chartsKey: null,
};

// What tests and the load benchmark read: the state, the block on screen, timings and the charts' data.
const status = {
  state: "connecting",
  error: null,
  block: null,
  renders: 0,
  readyAt: null,
  lastRefreshMs: null,
  renderedAt: {},
  logs: 0,
  charts: () => chartsData(),
};
window.efedDashboard = status;

const $ = (id) => document.getElementById(id);

async function fetchJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON */
  }
  return { ok: response.ok, status: response.status, body };
}

async function connect() {
  const url = query.get("deployment") || app.config.deployment || "deployment.json";
  const [chainHex, d] = await Promise.all([app.rpc.send("eth_chainId"), fetchJson(url)]);
  const chainId = Number(BigInt(chainHex));
  if (d.status === 502 || d.status === 504) throw new RpcError("no-chain", d.body?.error || "no chain");
  if (d.status === 404) throw new StateError("no-deployment", d.body?.error || `no deployment file at ${url}`);
  if (!d.ok || !d.body) throw new StateError("bad-deployment", d.body?.error || `${url}: HTTP ${d.status}`);
  const deployment = d.body;
  if (Number(deployment.chainId) !== chainId) {
    throw new StateError("wrong-network", `The deployment file is for chain ${deployment.chainId}, but the RPC endpoint serves chain ${chainId}.`);
  }
  let contracts;
  try {
    contracts = loadContracts(deployment);
  } catch (err) {
    if (err instanceof DeploymentError) throw new StateError("bad-deployment", err.message);
    throw err;
  }
  const [code, schedule] = await Promise.all([
    app.rpc.send("eth_getCode", [contracts.ServerRegistry.address, "latest"]),
    readSchedule(app.rpc, contracts).catch(() => null), // fails where the contracts are missing: said below
  ]);
  if (!code || code === "0x" || !schedule) {
    throw new StateError("not-deployed", `No contract code at ServerRegistry ${contracts.ServerRegistry.address} on chain ${chainId}: the chain was probably restarted after deploying.`);
  }
  app.deployment = deployment;
  app.contracts = contracts;
  app.chainId = chainId;
  app.schedule = schedule;
  app.history = new History({ contracts, decoders: eventDecoders(contracts), fromBlock: Number(deployment.block) });
  app.head = null;
  app.model = null;
}

async function refresh(head) {
  const started = performance.now();
  if (head < app.history.synced) app.history.reset(); // the chain went back (restart or revert): read it again
  const first = app.model === null;
  const onProgress = first ? (p) => showLoading(`Reading history: ${p.logs.toLocaleString("en-US")} events in ${p.blocks.toLocaleString("en-US")} of ${p.total.toLocaleString("en-US")} blocks`) : undefined;
  const t = { start: started };
  const [snapshot] = await Promise.all([
    readSnapshot(app.rpc, app.contracts, head).then((x) => ((t.snapshot = performance.now() - started), x)),
    app.history.sync(app.rpc, head, onProgress).then((x) => ((t.history = performance.now() - started), x)),
  ]);
  const built = performance.now();
  app.model = buildModel({ snapshot, history: app.history, schedule: app.schedule });
  app.head = head;
  const rendered = performance.now();
  status.lastRefreshMs = rendered - started; // shown in the footer by render()
  render();
  status.lastRefreshMs = performance.now() - started;
  status.timings = { snapshotMs: t.snapshot, historyMs: t.history, modelMs: rendered - built, renderMs: performance.now() - rendered, sync: app.history.lastSync };
  status.renderedAt[head] = Date.now();
  status.logs = app.history.logsFetched;
  if (first) {
    status.readyAt = performance.now();
    status.state = "ready";
  }
}

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [name, arg] = hash.split("/");
  if (name === "server" && arg) return { name: "server", key: `server/${arg.toLowerCase()}`, view: serverView, address: arg.toLowerCase() };
  if (name === "epochs") return { name: "epochs", key: "epochs", view: epochsView };
  if (name === "events") return { name: "events", key: "events", view: eventsView };
  return { name: "overview", key: "overview", view: overviewView };
}

function render() {
  if (!app.model) return;
  const r = route();
  const root = $("view");
  let chartsChanged = false;
  if (app.mounted !== r.key) {
    r.view.mount(root, { ...r, onChange: render });
    app.mounted = r.key;
    chartsChanged = true;
    window.scrollTo(0, 0);
  }
  const m = app.model;
  const key = `${r.key}|${app.history.version}|${m.epochs.current}|${m.snapshot.params.theta}|${m.servers.length}`;
  chartsChanged = chartsChanged || key !== app.chartsKey;
  app.chartsKey = key;
  r.view.update(root, m, { ...r, chartsChanged, deployment: app.deployment });
  document.querySelectorAll("#tabs a").forEach((a) => a.classList.toggle("active", a.dataset.route === r.name));
  setChip("live", `chain ${app.chainId} · block ${m.snapshot.block.number.toLocaleString("en-US")}`);
  $("footer").textContent = `${app.history.events.length.toLocaleString("en-US")} events since block ${app.deployment.block} · ` +
    `RPC ${app.config.rpcUrl || app.rpc.url} · refreshed in ${Math.round(status.lastRefreshMs ?? 0)} ms`;
  status.block = m.snapshot.block.number;
  status.renders += 1;
}

function setChip(state, text) {
  $("chain-chip").dataset.state = state;
  $("chain-chip-text").textContent = text;
}

function showLoading(text) {
  $("view").innerHTML = html`<div class="loading"><div class="spinner"></div>${text}</div>`.text;
  app.mounted = null;
}

const STATES = {
  "no-chain": ["No chain reachable", "Start a local chain with <code>efedllm chain up</code>, or check the dashboard's <code>--rpc-url</code>."],
  "no-deployment": ["No deployment on this chain", "Deploy the contracts with <code>efedllm deploy</code>, or give the dashboard a deployment file with <code>--deployment</code>."],
  "wrong-network": ["Wrong network", "Point <code>--rpc-url</code> at the deployment's chain, or give the deployment file of this chain with <code>--deployment</code>."],
  "not-deployed": ["Contracts not found", "Deploy again with <code>efedllm deploy</code> (a restarted dev chain starts empty)."],
  "bad-deployment": ["Unreadable deployment file", "Write it again with <code>efedllm deploy</code>."],
  rpc: ["The chain answered with an error", "Check that the RPC endpoint is an EVM node that serves eth_call and eth_getLogs."],
};

function showError(err) {
  const kind = err.kind && STATES[err.kind] ? err.kind : "rpc";
  const [title, hint] = STATES[kind];
  status.state = "error";
  status.error = { kind, title, message: err.message };
  app.mounted = null;
  app.model = null;
  setChip("error", kind === "no-chain" ? "no chain" : title.toLowerCase());
  $("banner").hidden = true;
  $("view").innerHTML = html`<section class="state card" data-state="${kind}">
    <div class="state-icon" aria-hidden="true">${kind === "no-chain" ? "⟲" : "!"}</div>
    <h1>${title}</h1><p class="state-message">${err.message}</p><p class="state-hint">${raw(hint)}</p>
    <p class="muted small">Retrying every ${RETRY_MS / 1000} s. <button class="more" id="retry">Retry now</button></p></section>`.text;
  $("retry").addEventListener("click", () => start());
}

let timer = null;
let generation = 0;

async function start() {
  clearTimeout(timer);
  const mine = ++generation;
  status.state = "connecting";
  try {
    await connect();
    const head = Number(BigInt(await app.rpc.send("eth_blockNumber")));
    await refresh(head);
    status.error = null;
    if (mine === generation) timer = setTimeout(poll, app.pollMs);
  } catch (err) {
    console.error(err);
    if (mine !== generation) return;
    showError(err);
    timer = setTimeout(start, RETRY_MS);
  }
}

async function poll() {
  const mine = generation;
  try {
    const head = Number(BigInt(await app.rpc.send("eth_blockNumber")));
    if (head !== app.head) await refresh(head);
    if (!$("banner").hidden) {
      $("banner").hidden = true;
      setChip("live", `chain ${app.chainId} · block ${app.head.toLocaleString("en-US")}`);
    }
  } catch (err) {
    console.error(err);
    if (err instanceof RpcError && err.kind === "no-chain") {
      $("banner").hidden = false;
      $("banner").textContent = `Lost the connection to the chain (${err.message}); showing block ${app.head}, retrying…`;
      setChip("stale", `reconnecting · block ${app.head}`);
    } else {
      // the chain changed under us (restarted, redeployed): connect again, which tells what is wrong
      if (mine === generation) start();
      return;
    }
  }
  if (mine === generation) timer = setTimeout(poll, app.pollMs);
}

function chartsData() {
  const out = {};
  for (const [id, data] of CHART_DATA) {
    if (data.kind === "bar") {
      out[id] = { kind: "bar", bars: data.bars.map((b) => ({ x: b.x, parts: b.parts.map((p) => ({ key: p.key, value: p.value })) })) };
    } else {
      out[id] = {
        kind: "line",
        refLines: data.refLines.map((r) => ({ y: r.y, label: r.label })),
        series: data.series.map((s) => ({ key: s.key, label: s.label, points: s.points, raw: s.raw || null })),
      };
    }
  }
  return out;
}

async function main() {
  const config = await fetchJson("config.json").catch(() => ({ ok: false }));
  app.config = config.ok && config.body ? config.body : {};
  app.rpc = new Rpc(query.get("rpc") || app.config.rpc || "rpc");
  app.pollMs = Number(query.get("poll") || app.config.pollMs || 1000);
  installChartHover(document.body);
  window.addEventListener("hashchange", render);
  await start();
}

main();
