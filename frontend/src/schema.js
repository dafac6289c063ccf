// The contracts' enums, the contract list and the deployment format, from efedllm/chain/schema.json, which is
// generated from the Solidity sources (python -m efedllm.chain.schema) and bundled by esbuild: nothing here
// restates a member or its value. Index maps give the values (Phase.Settled === 6); the label lists give what
// people read ("Commit work", "no quorum", "deactivated"), indexed by value.
import schema from "../../efedllm/chain/schema.json";

export const FORMAT = schema.format;
export const CONTRACT_NAMES = schema.contracts;

const words = (name) => name.replace(/([a-z0-9])([A-Z])/g, "$1 $2");
const values = (members) => Object.freeze(Object.fromEntries(members.map((name, i) => [name, i])));

export const Phase = values(schema.enums.Phase);
export const Outcome = values(schema.enums.Outcome);
export const Status = values(schema.enums.Status);

export const PHASES = schema.enums.Phase.map((n) => words(n)[0] + words(n).slice(1).toLowerCase());
export const OUTCOMES = schema.enums.Outcome.map((n) => words(n).toLowerCase());
export const STATUSES = schema.enums.Status.map((n) => n.toLowerCase());
// how a server declared it computes (IServerRegistry.Serving), as the CLI reads it: "bfloat16", "int8/float32"
export const COMPUTE_DTYPES = schema.enums.ComputeDtype.map((n) => n.toLowerCase());
export const servingLabel = (dtype, weights) =>
  (schema.enums.WeightFormat[Number(weights)] === "Int8" ? "int8/" : "") + COMPUTE_DTYPES[Number(dtype)];
export const SLASHING_RULES = schema.enums.SlashingRule.map((n) => words(n).toLowerCase());
