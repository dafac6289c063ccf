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

const GWEI = 10n ** 9n;

/** An amount that may be far below a ten-thousandth of an ETH (a price per token-layer, a server's client fees)
 * in the unit that reads best: "1,500 wei" below a million wei, gwei to four significant digits up to 0.0001 ETH
 * ("0.00144 gwei", "2.5 gwei", "1,200 gwei": the whole gwei are never rounded), then as eth() does. */
export function wei(value) {
  const v = BigInt(value);
  const abs = v < 0n ? -v : v;
  if (abs < 10n ** 6n) return `${int(v)} wei`;
  if (abs < 10n ** 14n) {
    const g = Number(v) / Number(GWEI);
    return `${numberFormat(Math.max(0, 3 - Math.floor(Math.log10(Math.abs(g))))).format(g)} gwei`;
  }
  return eth(v);
}

/** A server's announced price: "free" at 0, "—" when it never announced one. */
export function price(value) {
  if (value === null || value === undefined) return "—";
  return BigInt(value) === 0n ? "free" : wei(value);
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
