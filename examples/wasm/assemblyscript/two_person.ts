// two-person: hold transfers for two-person approval once context.amount
// reaches a threshold the operator configures, {"threshold": 10000}.
//
// Amounts are integers, in the currency's minor units if need be: Cedar
// has no fractional numbers. A transfer whose amount cannot be read,
// or whose context was too large to be sent, is held too: the extension
// fails closed. The manifest's prefilter means the engine calls this only
// for Action::"transfer_funds".

export { creto_abi_1, creto_io } from "../../../sdk/assemblyscript/assembly/index";
import {
  CONTINUE,
  FLAG_CONTEXT_OMITTED,
  NONE,
  READY,
  config,
  context,
  error,
  flags,
  isRequest,
  jsonGet,
  jsonInt,
  requiresOversight,
} from "../../../sdk/assemblyscript/assembly/index";

// A top-level constant: an array literal inside a function would be
// allocated on every call, and the stub runtime never frees.
const APPROVERS: StaticArray<string> = ["cfo", "controller"];
const TIMEOUT_NS: i64 = 30 * 60 * 1_000_000_000;

let threshold: i64 = 0;

export function creto_init(n: u32): u64 {
  threshold = jsonInt(jsonGet(config(n), "threshold"), 0);
  if (threshold <= 0) return error('two-person: the configuration needs {"threshold": N} with N > 0');
  return READY;
}

function hold(): u64 {
  return requiresOversight("large-transfer", "two-person", TIMEOUT_NS, APPROVERS);
}

export function creto_evaluate(n: u32): u64 {
  if (!isRequest(n)) return error("two-person: malformed request");
  if (flags() & FLAG_CONTEXT_OMITTED) return hold();
  const amount = jsonGet(context(), "amount");
  if (amount == NONE) return CONTINUE;
  const whole = jsonInt(amount);
  return whole == i64.MIN_VALUE || whole >= threshold ? hold() : CONTINUE;
}
