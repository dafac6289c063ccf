// Contracts and events from the deployment file's ABIs (the single source of truth; no ABI is copied here).
// Selectors are computed once per ABI item, and events whose data is all static words (nearly all of ours)
// are decoded by slicing words, which keeps tens of thousands of history logs cheap to decode.
import {
  decodeAbiParameters,
  encodeAbiParameters,
  getAddress,
  toEventSelector,
  toFunctionSelector,
} from "viem";

import { CONTRACT_NAMES, FORMAT } from "./schema.js";

export class DeploymentError extends Error {}

export class Contract {
  constructor(name, address, abi) {
    this.name = name;
    this.address = address.toLowerCase();
    this.functions = new Map();
    for (const item of abi) {
      if (item.type === "function" && !this.functions.has(item.name)) {
        this.functions.set(item.name, { item, selector: toFunctionSelector(item) });
      }
    }
    this.events = abi.filter((item) => item.type === "event");
  }

  fn(name) {
    const f = this.functions.get(name);
    if (!f) throw new DeploymentError(`the deployment's ${this.name} ABI has no function ${name}`);
    return f;
  }

  /** An eth_call request and its decoder, for Rpc.batch. */
  call(name, args = [], block = "latest") {
    const { item, selector } = this.fn(name);
    const data = item.inputs.length ? selector + encodeAbiParameters(item.inputs, args).slice(2) : selector;
    return {
      request: ["eth_call", [{ to: this.address, data }, block]],
      decode: (hex) => {
        const out = decodeAbiParameters(item.outputs, hex);
        return item.outputs.length === 1 ? out[0] : out;
      },
    };
  }
}

/** Validates the deployment file as the Python side does (its format, every contract with address and ABI). */
export function loadContracts(deployment) {
  if (!deployment || deployment.format !== FORMAT) throw new DeploymentError(`unsupported deployment format ${deployment?.format}`);
  const contracts = {};
  for (const name of CONTRACT_NAMES) {
    const record = deployment.contracts?.[name];
    if (!record || !/^0x[0-9a-fA-F]{40}$/.test(record.address || "") || !Array.isArray(record.abi)) {
      throw new DeploymentError(`the deployment file has no valid address and ABI for ${name}`);
    }
    contracts[name] = new Contract(name, record.address, record.abi);
  }
  return contracts;
}

const STATIC = /^(u?int\d*|address|bool|bytes32)$/;

function wordValue(type, word) {
  if (type === "address") return "0x" + word.slice(24);
  if (type === "bool") return word.endsWith("1");
  if (type === "bytes32") return "0x" + word;
  if (type.startsWith("int")) return BigInt.asIntN(Number(type.slice(3) || 256), BigInt("0x" + word));
  const bits = Number(type.slice(4) || 256);
  return bits <= 48 ? parseInt(word, 16) : BigInt("0x" + word);
}

const inputNames = (item) => item.inputs.map((i) => i.name).join(",");

/** topic0 -> decoder for every event of the given contracts; addresses come out lowercase. Events that several
 * contracts share (ParameterSet, Paused) decode alike in every contract and have one decoder; an event whose
 * signature repeats another contract's with other argument names (Payments' Withdrawn(client, amount) beside
 * ServerRegistry's Withdrawn(server, amount)) also gets one under "<contract address>:<topic0>": decoderFor
 * picks it. */
export function eventDecoders(contracts) {
  const decoders = new Map();
  for (const contract of Object.values(contracts)) {
    for (const item of contract.events) {
      const topic = toEventSelector(item);
      const seen = decoders.get(topic);
      if (seen && seen.inputs === inputNames(item)) continue;
      const key = seen ? `${contract.address}:${topic}` : topic;
      const indexed = item.inputs.filter((i) => i.indexed);
      const plain = item.inputs.filter((i) => !i.indexed);
      const fast = plain.every((i) => STATIC.test(i.type));
      const lower = (v) => (typeof v === "string" && v.length === 42 ? v.toLowerCase() : v);
      decoders.set(key, {
        name: item.name,
        topic,
        inputs: inputNames(item),
        decode(log) {
          const args = {};
          indexed.forEach((input, k) => {
            args[input.name] = STATIC.test(input.type) ? wordValue(input.type, log.topics[k + 1].slice(2)) : log.topics[k + 1];
          });
          if (fast) {
            const data = log.data.slice(2);
            plain.forEach((input, k) => {
              args[input.name] = wordValue(input.type, data.slice(k * 64, k * 64 + 64));
            });
          } else {
            // dynamic data (arrays, strings) is decoded on first read: the history only counts most such events
            let values = null;
            plain.forEach((input, k) => {
              Object.defineProperty(args, input.name, {
                enumerable: true,
                get() {
                  values = values || decodeAbiParameters(plain, log.data);
                  const v = values[k];
                  return Array.isArray(v) ? v.map(lower) : lower(v);
                },
              });
            });
          }
          return args;
        },
      });
    }
  }
  return decoders;
}

/** The decoder of a log: its contract's own where the event's signature is shared with other names. */
export function decoderFor(decoders, log) {
  return decoders.get(`${log.address.toLowerCase()}:${log.topics[0]}`) || decoders.get(log.topics[0]);
}

const checksums = new Map();
/** EIP-55 form of an address, memoised (it costs a keccak). */
export function checksum(address) {
  let c = checksums.get(address);
  if (!c) {
    c = getAddress(address);
    checksums.set(address, c);
  }
  return c;
}
