// The AssemblyScript SDK's platform guest: examples/wasm/platform_test.go
// drives it, like every SDK's, through the engine against the real host
// modules. Each action calls one binding on the request's principal id (p)
// and resource id (r) and reports what it got as a quota decision: id the
// text, limit the number (a negative E* code on an error), used and reset
// two more numbers. Byte results are read with a 16-byte buffer first, so
// the return convention's retry is exercised on every long one.

export { creto_abi_1, creto_io } from "../assembly/index";
import {
  AUDIT_DENIED,
  auditEmit,
  Bytes,
  CLASS_ARTIFACT,
  CONTINUE,
  MAC_SIZE,
  ObjectStat,
  Timestamp,
  actionId,
  bytes,
  consensusTimestamp,
  context,
  equals,
  error,
  isRequest,
  nhiAgentType,
  nhiAttribute,
  nhiIsRegistered,
  nhiIsRevoked,
  nhiOwner,
  nhiStatus,
  principalId,
  quotaExceeded,
  resourceId,
  storageDelete,
  storageGet,
  storagePut,
  storageStat,
  vaultMac,
  vaultReveal,
} from "../assembly/index";

const BUCKET = "platform";
const SECRET = "SIGNING";

const OUT_SIZE: u32 = 8192;
const OUT: usize = memory.data(<i32>OUT_SIZE);
const MAC: usize = memory.data(32);
const STAT: usize = memory.data(32);
const STAMP: usize = memory.data(276);

function number(n: i64): u64 {
  return quotaExceeded<string>("", n, 0, 0);
}

// Which byte result fetch reads.
const OWNER = 0;
const AGENT_TYPE = 1;
const ATTRIBUTE = 2;
const REVEAL = 3;
const GET = 4;

function read(what: i32, p: Bytes, r: Bytes, cap: u32): i32 {
  switch (what) {
    case OWNER:
      return nhiOwner<Bytes>(p, OUT, cap);
    case AGENT_TYPE:
      return nhiAgentType<Bytes>(p, OUT, cap);
    case ATTRIBUTE:
      return nhiAttribute<Bytes, Bytes>(p, r, OUT, cap);
    case REVEAL:
      return vaultReveal<Bytes, string>(r, SECRET, OUT, cap);
  }
  return storageGet<string, Bytes>(BUCKET, r, OUT, cap);
}

// Reads with a small buffer, then one of the reported length; reports the
// text and n (its length when withLen, else 0), or the code.
function fetch(what: i32, p: Bytes, r: Bytes, withLen: bool): u64 {
  let cap: u32 = 16;
  let n = read(what, p, r, cap);
  while (n > <i32>cap && <u32>n <= OUT_SIZE) {
    cap = <u32>n;
    n = read(what, p, r, cap);
  }
  if (n < 0) return number(n);
  if (<u32>n > cap) return error("platform: result too large");
  return quotaExceeded<Bytes>(bytes(OUT, n), withLen ? n : 0, 0, 0);
}

function mac(p: Bytes, r: Bytes): u64 {
  const n = vaultMac<Bytes, string>(r, SECRET, p, MAC);
  if (n < 0) return number(n);
  for (let i: u32 = 0; i < MAC_SIZE; i++) {
    const b = load<u8>(MAC + i);
    store<u8>(OUT + 2 * i, hexDigit(b >> 4));
    store<u8>(OUT + 2 * i + 1, hexDigit(b & 15));
  }
  return quotaExceeded<Bytes>(bytes(OUT, 2 * MAC_SIZE), n, 0, 0);
}

function hexDigit(d: u8): u8 {
  return d < 10 ? 0x30 + d : 0x61 + d - 10;
}

function stat(r: Bytes): u64 {
  const st = changetype<ObjectStat>(STAT);
  const n = storageStat<string, Bytes>(BUCKET, r, st);
  if (n < 0) return number(n);
  store<u8>(OUT, <u8>(0x30 + st.classification));
  store<u8>(OUT + 1, 0x2f);
  store<u8>(OUT + 2, st.retained() ? 0x31 : 0x30);
  return quotaExceeded<Bytes>(bytes(OUT, 3), <i64>st.size, st.expires, st.created);
}

function timestamp(): u64 {
  const n = consensusTimestamp(STAMP);
  if (n < 0) return number(n);
  const ts = changetype<Timestamp>(STAMP);
  return quotaExceeded<Bytes>(ts.nodeId(n), <i64>ts.logical, ts.consensus() ? 1 : 0, ts.physical);
}

export function creto_evaluate(n: u32): u64 {
  if (!isRequest(n)) return error("platform: malformed request");
  const a = actionId();
  const p = principalId();
  const r = resourceId();
  if (equals(a, "is_registered")) return number(nhiIsRegistered<Bytes>(p));
  if (equals(a, "is_revoked")) return number(nhiIsRevoked<Bytes>(p));
  if (equals(a, "status")) return number(nhiStatus<Bytes>(p));
  if (equals(a, "owner")) return fetch(OWNER, p, r, false);
  if (equals(a, "agent_type")) return fetch(AGENT_TYPE, p, r, false);
  if (equals(a, "attribute")) return fetch(ATTRIBUTE, p, r, false);
  if (equals(a, "mac")) return mac(p, r);
  if (equals(a, "reveal")) return fetch(REVEAL, p, r, true);
  if (equals(a, "emit")) {
    return number(auditEmit<Bytes, Bytes, string, string>(r, p, "checked", AUDIT_DENIED, '{"via":"platform"}'));
  }
  if (equals(a, "put")) return number(storagePut<string, Bytes>(BUCKET, r, context(), CLASS_ARTIFACT, 3600));
  if (equals(a, "get")) return fetch(GET, p, r, true);
  if (equals(a, "stat")) return stat(r);
  if (equals(a, "delete")) return number(storageDelete<string, Bytes>(BUCKET, r));
  if (equals(a, "timestamp")) return timestamp();
  return CONTINUE;
}
