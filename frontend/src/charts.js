// Small SVG charts drawn by hand: lines over epochs (with reference lines such as θ) and stacked bars. The
// data behind each chart is kept in CHART_DATA by id, for the hover readout and for tests.
import { esc, html, raw } from "./dom.js";

const W0 = 640;
const H0 = 230;
const PAD = { l: 56, r: 14, t: 14, b: 30 };
export const PALETTE = ["#4f46e5", "#0891b2", "#16a34a", "#d97706", "#db2777", "#7c3aed", "#0d9488", "#ea580c", "#2563eb", "#65a30d"];
export const CHART_DATA = new Map();

function niceStep(range, count) {
  const raw0 = range / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw0 || 1));
  const norm = raw0 / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
}

function ticks(min, max, count, integer = false) {
  if (max <= min) max = min + 1;
  let step = niceStep(max - min, count);
  if (integer) step = Math.max(1, Math.round(step));
  const out = [];
  for (let v = Math.ceil(min / step) * step; v <= max + 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}

function frame(W, H, xMin, xMax, yMin, yMax) {
  const sx = (x) => PAD.l + ((x - xMin) / Math.max(1e-9, xMax - xMin)) * (W - PAD.l - PAD.r);
  const sy = (y) => H - PAD.b - ((y - yMin) / Math.max(1e-9, yMax - yMin)) * (H - PAD.t - PAD.b);
  return { sx, sy };
}

function axes({ W, H, xMin, xMax, yMin, yMax, yFormat, xLabel, sx, sy }) {
  const yt = ticks(yMin, yMax, 4);
  const xt = ticks(xMin, xMax, 6, true);
  return [
    ...yt.map((v) => `<line class="gridline" x1="${PAD.l}" x2="${W - PAD.r}" y1="${sy(v)}" y2="${sy(v)}"/><text class="tick" x="${PAD.l - 6}" y="${sy(v) + 4}" text-anchor="end">${esc(yFormat(v))}</text>`),
    ...xt.map((v) => `<text class="tick" x="${sx(v)}" y="${H - PAD.b + 16}" text-anchor="middle">${v}</text>`),
    `<line class="axis" x1="${PAD.l}" x2="${W - PAD.r}" y1="${H - PAD.b}" y2="${H - PAD.b}"/>`,
    xLabel ? `<text class="axis-label" x="${W - PAD.r}" y="${H - 2}" text-anchor="end">${esc(xLabel)}</text>` : "",
  ].join("");
}

/** Path through points, broken where epochs are missing (a gap in the data is a gap in the line). */
function pathOf(points, sx, sy) {
  let d = "";
  points.forEach(([x, y], i) => {
    const joined = i > 0 && x - points[i - 1][0] <= 1;
    d += `${joined ? "L" : "M"}${sx(x).toFixed(1)} ${sy(y).toFixed(1)}`;
  });
  return d;
}

/**
 * series: [{ key, label, color, points: [[x, y]], width, dim }] with numeric y; refLines: [{ y, label }].
 * The whole input is stored in CHART_DATA under `id`.
 */
export function lineChart({ id, title, series, xMin, xMax, yMin, yMax, yFormat = String, xLabel = "epoch", refLines = [], empty, legend = true, width: W = W0, height: H = H0 }) {
  const count = series.reduce((n, s) => n + s.points.length, 0);
  CHART_DATA.set(id, { kind: "line", series, refLines, yFormat });
  if (!count) {
    return html`<div class="chart-empty" data-chart="${id}" data-empty="true">${empty || "No data yet."}</div>`;
  }
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).concat(refLines.map((r) => r.y));
  xMin = xMin ?? Math.min(...xs);
  xMax = Math.max(xMax ?? Math.max(...xs), xMin + 1);
  yMin = yMin ?? Math.min(0, ...ys);
  yMax = yMax ?? Math.max(...ys) * 1.08;
  if (yMax <= yMin) yMax = yMin + 1;
  const { sx, sy } = frame(W, H, xMin, xMax, yMin, yMax);
  const markers = series.length <= 8 && count <= 60 * series.length;
  const lines = series.map((s) => {
    const dots = markers ? s.points.map(([x, y]) => `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.6" fill="${s.color}"/>`).join("") : "";
    return `<g class="series${s.dim ? " dim" : ""}" data-series="${esc(s.key)}" data-count="${s.points.length}"><title>${esc(s.label)}</title>` +
      `<path d="${pathOf(s.points, sx, sy)}" stroke="${s.color}" stroke-width="${s.width || 2}" fill="none"/>${dots}</g>`;
  }).join("");
  const refs = refLines.map((r) =>
    `<g class="ref" data-ref="${esc(r.label)}"><line x1="${PAD.l}" x2="${W - PAD.r}" y1="${sy(r.y)}" y2="${sy(r.y)}"/>` +
    `<text x="${W - PAD.r - 4}" y="${sy(r.y) - 5}" text-anchor="end">${esc(r.label)}</text></g>`).join("");
  const legendHtml = legend && series.length <= 8
    ? html`<div class="legend">${series.map((s) => html`<span><i style="background:${s.color}"></i>${s.label}</span>`)}</div>`
    : "";
  return html`<figure class="chart" data-chart="${id}" data-series-count="${series.length}">
    ${raw(`<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title || id)}" data-x-min="${xMin}" data-x-max="${xMax}">`)}
    ${raw(axes({ W, H, xMin, xMax, yMin, yMax, yFormat, xLabel, sx, sy }))}${raw(refs)}${raw(lines)}
    ${raw(`<line class="cursor" x1="0" x2="0" y1="${PAD.t}" y2="${H - PAD.b}" visibility="hidden"/></svg>`)}
    <div class="chart-tip" hidden></div>${legendHtml}</figure>`;
}

/** Stacked bars: bars [{ x, parts: [{ key, value }] }], keys [{ key, label, color }]. */
export function barChart({ id, title, bars, keys, yFormat = String, xLabel = "epoch", empty, width: W = W0, height: H = H0 }) {
  CHART_DATA.set(id, { kind: "bar", bars, keys, yFormat });
  const total = (b) => b.parts.reduce((n, p) => n + p.value, 0);
  if (!bars.some((b) => total(b) > 0)) {
    return html`<div class="chart-empty" data-chart="${id}" data-empty="true">${empty || "No data yet."}</div>`;
  }
  const xMin = bars[0].x - 0.5;
  const xMax = bars[bars.length - 1].x + 0.5;
  const yMax = Math.max(...bars.map(total)) * 1.08;
  const { sx, sy } = frame(W, H, xMin, xMax, 0, yMax);
  const bw = Math.max(1, (sx(1) - sx(0)) * 0.72);
  const rects = bars.map((b) => {
    let base = 0;
    return b.parts.map((p) => {
      if (!p.value) return "";
      const color = keys.find((k) => k.key === p.key).color;
      const r = `<rect x="${(sx(b.x) - bw / 2).toFixed(1)}" y="${sy(base + p.value).toFixed(1)}" width="${bw.toFixed(1)}" height="${(sy(base) - sy(base + p.value)).toFixed(1)}" fill="${color}"/>`;
      base += p.value;
      return r;
    }).join("");
  }).join("");
  return html`<figure class="chart" data-chart="${id}" data-bars="${bars.length}">
    ${raw(`<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title || id)}" data-x-min="${xMin}" data-x-max="${xMax}">`)}
    ${raw(axes({ W, H, xMin, xMax, yMin: 0, yMax, yFormat, xLabel, sx, sy }))}${raw(rects)}
    ${raw(`<line class="cursor" x1="0" x2="0" y1="${PAD.t}" y2="${H - PAD.b}" visibility="hidden"/></svg>`)}
    <div class="chart-tip" hidden></div>
    <div class="legend">${keys.map((k) => html`<span><i style="background:${k.color}"></i>${k.label}</span>`)}</div></figure>`;
}

function readout(data, x) {
  const f = data.yFormat;
  if (data.kind === "bar") {
    const bar = data.bars.find((b) => b.x === x);
    if (!bar) return null;
    return `<b>epoch ${x}</b>` + bar.parts.map((p) => `<div>${esc(data.keys.find((k) => k.key === p.key).label)}: ${esc(f(p.value))}</div>`).join("");
  }
  const values = data.series.map((s) => [s, s.points.find((p) => p[0] === x)]).filter(([, p]) => p);
  if (!values.length) return null;
  let body;
  if (values.length <= 6) {
    body = values.map(([s, p]) => `<div><i style="background:${s.color}"></i>${esc(s.label)}: ${esc(f(p[1]))}</div>`).join("");
  } else {
    const ys = values.map(([, p]) => p[1]).sort((a, b) => a - b);
    const ref = data.refLines[0];
    const below = ref ? ys.filter((y) => y < ref.y).length : 0;
    body = `<div>${values.length} servers</div><div>min ${esc(f(ys[0]))} · median ${esc(f(ys[Math.floor(ys.length / 2)]))} · max ${esc(f(ys[ys.length - 1]))}</div>` +
      (ref ? `<div>${below} below ${esc(ref.label)}</div>` : "");
  }
  return `<b>epoch ${x}</b>${body}`;
}

/** One delegated handler for every chart on the page: a cursor line and the values at the nearest epoch. */
export function installChartHover(root) {
  root.addEventListener("mousemove", (event) => {
    const svg = event.target.closest?.("figure.chart svg");
    root.querySelectorAll("figure.chart .chart-tip:not([hidden])").forEach((tip) => {
      if (!svg || tip.parentElement !== svg.parentElement) {
        tip.hidden = true;
        tip.parentElement.querySelector(".cursor")?.setAttribute("visibility", "hidden");
      }
    });
    if (!svg) return;
    const fig = svg.parentElement;
    const data = CHART_DATA.get(fig.dataset.chart);
    if (!data) return;
    const box = svg.getBoundingClientRect();
    const W = svg.viewBox.baseVal.width;
    const vx = ((event.clientX - box.left) / box.width) * W;
    const xMin = Number(svg.dataset.xMin);
    const xMax = Number(svg.dataset.xMax);
    const x = Math.round(xMin + ((vx - PAD.l) / (W - PAD.l - PAD.r)) * (xMax - xMin));
    const content = readout(data, x);
    const tip = fig.querySelector(".chart-tip");
    const cursor = svg.querySelector(".cursor");
    if (!content) {
      tip.hidden = true;
      cursor.setAttribute("visibility", "hidden");
      return;
    }
    const cx = PAD.l + ((x - xMin) / (xMax - xMin)) * (W - PAD.l - PAD.r);
    cursor.setAttribute("x1", cx);
    cursor.setAttribute("x2", cx);
    cursor.setAttribute("visibility", "visible");
    tip.innerHTML = content;
    tip.hidden = false;
    const left = (cx / W) * box.width;
    tip.style.left = `${Math.min(Math.max(0, left + 12), box.width - tip.offsetWidth)}px`;
  });
}
