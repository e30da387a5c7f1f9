// The AssemblyScript SDK's conformance guest. examples/wasm/conformance_test.go
// drives it twice: directly, through the probe exports below, to hold the
// readers and builders to abi/testdata/golden byte for byte; and through the
// engine, to check the host-function bindings against the real host modules.

export { creto_abi_1, creto_io } from "../assembly/index";
import {
  ALLOW,
  Bytes,
  CONTINUE,
  DENY,
  ENOTFOUND,
  LOG_INFO,
  QUOTA_EXCEEDED,
  RATE_LIMITED,
  READY,
  REQUIRES_OVERSIGHT,
  actionId,
  actionType,
  allow,
  attributes,
  bytes,
  bytesEqual,
  config,
  context,
  delegationId,
  delegationLen,
  delegationType,
  deny,
  equals,
  error,
  flags,
  isRequest,
  jsonGet,
  jsonInt,
  jsonString,
  log,
  outcome,
  principalId,
  principalType,
  quotaExceeded,
  rateLimited,
  requestContext,
  requestPrincipalAttributes,
  requiresOversight,
  resourceId,
  resourceType,
  stateAdd,
  stateGet,
  stateSet,
  timeNow,
  traceId,
} from "../assembly/index";

const APPROVERS: StaticArray<string> = ["cfo", "controller"];

// The golden decisions, numbered by kind like decision-*.json.
function golden(kind: u32): u64 {
  switch (kind) {
    case ALLOW:
      return allow();
    case DENY:
      return deny("no-deletes-after-hours", "deletes are allowed 08:00-18:00 only");
    case REQUIRES_OVERSIGHT:
      return requiresOversight("large-transfer", "two-person", 1800000000000, APPROVERS);
    case QUOTA_EXCEEDED:
      return quotaExceeded("llm-tokens/daily", 100000, 100001, 1764201600000000000);
    case RATE_LIMITED:
      return rateLimited(250000000, 0);
  }
  return error("conformance: no such golden decision");
}

export function golden_decision(kind: u32): u64 {
  return golden(kind);
}

export function golden_error(): u64 {
  return error("conformance: refused");
}

// One field of the request in arena[0:n]: a string as (address << 32) |
// length, or a number; -1 when the request is malformed or the field
// unknown. Fields 0-8 are the strings in header order, 9 the flags, 10 the
// outcome, 11 the delegation length, 16 + 2i and 17 + 2i link i.
export function probe(n: u32, field: u32): i64 {
  if (!isRequest(n)) return -1;
  switch (field) {
    case 0:
      return principalType();
    case 1:
      return principalId();
    case 2:
      return actionType();
    case 3:
      return actionId();
    case 4:
      return resourceType();
    case 5:
      return resourceId();
    case 6:
      return context();
    case 7:
      return attributes();
    case 8:
      return traceId();
    case 9:
      return flags();
    case 10:
      return outcome();
    case 11:
      return delegationLen();
  }
  const link = (field - 16) / 2;
  if (field >= 16 && link < delegationLen()) return field % 2 ? delegationId(link) : delegationType(link);
  return -1;
}

// Looks up the key in arena[jsonLen:jsonLen+keyLen] in the JSON at
// arena[0:jsonLen]. Mode 0 returns the raw value's view, 1 the integer
// (i64.MIN_VALUE when it is not one), 2 the string contents' view; -1 when
// missing.
export function json_probe(jsonLen: u32, keyLen: u32, mode: u32): i64 {
  const json = config(jsonLen);
  const key = bytes(<usize>(json >> 32) + jsonLen, keyLen);
  const v = jsonGet<Bytes>(json, key);
  if (v == 0) return -1;
  if (mode == 1) return jsonInt(v);
  if (mode == 2) {
    const s = jsonString(v);
    return s == 0 ? -1 : s;
  }
  return v;
}

export function creto_init(n: u32): u64 {
  return equals(config(n), "refuse") ? error("conformance: refused") : READY;
}

const SCRATCH_SIZE: u32 = 1024;
const CONTEXT: usize = memory.data(SCRATCH_SIZE);
const ATTRIBUTES: usize = memory.data(SCRATCH_SIZE);
const READBACK: usize = memory.data(SCRATCH_SIZE);

// Calls every host function once and reports what they returned in a
// quota decision: id the context, limit the counter, used the length of
// the attributes, reset the clock.
function hostcalls(): u64 {
  log(LOG_INFO, "conformance: hostcalls");
  const ctx = requestContext(CONTEXT, SCRATCH_SIZE);
  const attrs = requestPrincipalAttributes(ATTRIBUTES, SCRATCH_SIZE);
  if (ctx < 0 || <u32>ctx > SCRATCH_SIZE || attrs < 0 || <u32>attrs > SCRATCH_SIZE) {
    return error("conformance: creto:request/v1 failed");
  }
  const got = bytes(ATTRIBUTES, attrs);
  if (
    stateSet("attrs", got) != 0 ||
    stateGet("attrs", READBACK, SCRATCH_SIZE) != attrs ||
    !bytesEqual(bytes(READBACK, attrs), got)
  ) {
    return error("conformance: creto:state/v1 get/set failed");
  }
  if (stateGet("missing", READBACK, SCRATCH_SIZE) != ENOTFOUND) {
    return error("conformance: creto:state/v1 found a missing key");
  }
  const calls = stateAdd("calls", 1);
  return quotaExceeded<Bytes>(bytes(CONTEXT, ctx), calls, attrs, timeNow());
}

export function creto_evaluate(n: u32): u64 {
  if (!isRequest(n)) return error("conformance: malformed request");
  const action = actionId();
  if (equals(action, "hostcalls")) return hostcalls();
  if (equals(action, "golden-allow")) return golden(ALLOW);
  if (equals(action, "golden-deny")) return golden(DENY);
  if (equals(action, "golden-oversight")) return golden(REQUIRES_OVERSIGHT);
  if (equals(action, "golden-quota")) return golden(QUOTA_EXCEEDED);
  if (equals(action, "golden-ratelimit")) return golden(RATE_LIMITED);
  return CONTINUE;
}
