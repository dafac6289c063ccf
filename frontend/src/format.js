// How numbers read on the page: wei as ETH, 18-decimal fractions as decimals, addresses shortened.
import { checksum } from "./abi.js";

const WEI = 10n ** 18n;
// one formatter each: Number.prototype.toLocaleString builds a new one per call, which shows in a 100-row render
const FORMATS = new Map();
const numberFormat = (digits) => {
  if (!FORMATS.has(digits)) FORMATS.set(digits, new Intl.NumberFormat("en-US", { maximumFractionDigits: digits }));
  return FORMATS.get(digits);
};

/** Exact decimal text of a fixed-point integer with 18 decimals (no float rounding). */
export function decimal18(value) {
  const v = BigInt(value);
  const neg = v < 0n;
  const abs = neg ? -v : v;
  const frac = (abs % WEI).toString().padStart(18, "0").replace(/0+$/, "");
  return (neg ? "-" : "") + (abs / WEI).toString() + (frac ? "." + frac : "");
}

/** "12.5 ETH": at most `digits` decimals, thousands separated; the exact value goes in a title. */
export function eth(wei, { digits = 4, unit = true } = {}) {
  const v = BigInt(wei);
  const scaled = Number(v) / 1e18;
  let text;
  if (v === 0n) text = "0";
  else if (Math.abs(scaled) < 10 ** -digits) text = "<" + (10 ** -digits).toFixed(digits);
  else text = numberFormat(digits).format(scaled);
  return unit ? `${text} ETH` : text;
}

/** An 18-decimal fraction (acc, S_i, θ) as "0.9300". */
export function frac(value, digits = 4) {
  return (Number(BigInt(value)) / 1e18).toFixed(digits);
}

export function pct(value) {
  return `${(Number(BigInt(value)) / 1e16).toFixed(1)}%`;
}

export function short(address) {
  const c = checksum(address);
  return `${c.slice(0, 6)}…${c.slice(-4)}`;
}

export function span(first, count) {
  return `${first}:${Number(first) + Number(count)}`;
}

/** [0, 1, 2, 5] -> "0-2, 5" (as the command line writes layer lists). */
export function compactLayers(layers) {
  const parts = [];
  let start = null;
  layers.forEach((layer, i) => {
    if (start === null) start = layer;
    if (i + 1 === layers.length || layers[i + 1] !== layer + 1) {
      parts.push(start === layer ? `${start}` : `${start}-${layer}`);
      start = null;
    }
  });
  return parts.join(", ");
}

export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

export function dateTime(unix) {
  return new Date(unix * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}

export function int(n) {
  return numberFormat(0).format(BigInt(n));
}
