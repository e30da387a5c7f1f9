// Bindings of the platform's host modules (abi/SPEC.md 6.6-6.11): nhi,
// vault (with vault-reveal), audit, storage and consensus. Each needs its
// capability in manifest.json and the operator's grant.
//
// Like stateGet, functions that return bytes take the caller's buffer
// (out, cap) and follow the return convention: the result's full length,
// with nothing written when it is over cap (call again with a buffer at
// least that long), or a negative E* code. Nothing allocates. Arguments
// are strings (encoded into buffers of the SDK's own, 4 KiB each; a longer
// one is EINVAL) or Bytes views, such as the request's principalId().

import { Bytes, bytes, lenOf, ptrOf } from "./index";

// @ts-ignore: decorator
@external("creto:nhi/v1", "is_registered")
declare function hostNhiIsRegistered(id: usize, idLen: u32): i32;
// @ts-ignore: decorator
@external("creto:nhi/v1", "is_revoked")
declare function hostNhiIsRevoked(id: usize, idLen: u32): i32;
// @ts-ignore: decorator
@external("creto:nhi/v1", "status")
declare function hostNhiStatus(id: usize, idLen: u32): i32;
// @ts-ignore: decorator
@external("creto:nhi/v1", "owner")
declare function hostNhiOwner(id: usize, idLen: u32, out: usize, cap: u32): i32;
// @ts-ignore: decorator
@external("creto:nhi/v1", "agent_type")
declare function hostNhiAgentType(id: usize, idLen: u32, out: usize, cap: u32): i32;
// @ts-ignore: decorator
@external("creto:nhi/v1", "attribute")
declare function hostNhiAttribute(id: usize, idLen: u32, key: usize, keyLen: u32, out: usize, cap: u32): i32;
// @ts-ignore: decorator
@external("creto:vault/v1", "mac")
declare function hostVaultMac(
  path: usize, pathLen: u32, name: usize, nameLen: u32, data: usize, dataLen: u32, out: usize, cap: u32,
): i32;
// @ts-ignore: decorator
@external("creto:vault-reveal/v1", "reveal")
declare function hostVaultReveal(path: usize, pathLen: u32, name: usize, nameLen: u32, out: usize, cap: u32): i32;
// @ts-ignore: decorator
@external("creto:audit/v1", "emit")
declare function hostAuditEmit(
  what: usize, whatLen: u32, resource: usize, resourceLen: u32, why: usize, whyLen: u32,
  outcome: u32, ctx: usize, ctxLen: u32,
): i32;
// @ts-ignore: decorator
@external("creto:storage/v1", "put")
declare function hostStoragePut(
  bucket: usize, bucketLen: u32, key: usize, keyLen: u32, data: usize, dataLen: u32, cls: u32, ttlS: i64,
): i32;
// @ts-ignore: decorator
@external("creto:storage/v1", "get")
declare function hostStorageGet(bucket: usize, bucketLen: u32, key: usize, keyLen: u32, out: usize, cap: u32): i32;
// @ts-ignore: decorator
@external("creto:storage/v1", "stat")
declare function hostStorageStat(bucket: usize, bucketLen: u32, key: usize, keyLen: u32, out: usize, cap: u32): i32;
// @ts-ignore: decorator
@external("creto:storage/v1", "delete")
declare function hostStorageDelete(bucket: usize, bucketLen: u32, key: usize, keyLen: u32): i32;
// @ts-ignore: decorator
@external("creto:consensus/v1", "timestamp")
declare function hostConsensusTimestamp(out: usize, cap: u32): i32;

// One buffer per argument position, so that up to four string arguments
// of one call never share one.
const ARG_SIZE: i32 = 4096;
const ARG0: usize = memory.data(ARG_SIZE);
const ARG1: usize = memory.data(ARG_SIZE);
const ARG2: usize = memory.data(ARG_SIZE);
const ARG3: usize = memory.data(ARG_SIZE);

// A string argument encoded into buf, or Bytes as they are. A string too
// long for the buffer becomes a view past the end of memory, which the
// host refuses as EINVAL rather than reading a truncated name.
function arg<T>(s: T, buf: usize): Bytes {
  if (isString<T>()) {
    const str = changetype<string>(s);
    if (String.UTF8.byteLength(str) > ARG_SIZE) return bytes(0, 0xffffffff);
    return bytes(buf, <u32>String.UTF8.encodeUnsafe(changetype<usize>(str), str.length, buf));
  }
  return <Bytes>s;
}

// ---- creto:nhi/v1 (capability "nhi") ------------------------------------
//
// The identity registry's record of an agent, read-only. An id over 128
// bytes is EINVAL; one the registry does not know ENOTFOUND (except for
// nhiIsRegistered).

/** Agent statuses, as nhiStatus returns them. Only NHI_ACTIVE may act. */
export const NHI_ACTIVE: i32 = 1;
export const NHI_SUSPENDED: i32 = 2;
export const NHI_REVOKED: i32 = 3;
/** Active, but past its expiry. */
export const NHI_EXPIRED: i32 = 4;

/** 1 when the id was ever registered (revoked agents included), 0 when not. */
export function nhiIsRegistered<T = Bytes>(id: T): i32 {
  const i = arg<T>(id, ARG0);
  return hostNhiIsRegistered(ptrOf(i), lenOf(i));
}

/** 1 revoked, 0 not. */
export function nhiIsRevoked<T = Bytes>(id: T): i32 {
  const i = arg<T>(id, ARG0);
  return hostNhiIsRevoked(ptrOf(i), lenOf(i));
}

/** One of NHI_ACTIVE, NHI_SUSPENDED, NHI_REVOKED, NHI_EXPIRED. */
export function nhiStatus<T = Bytes>(id: T): i32 {
  const i = arg<T>(id, ARG0);
  return hostNhiStatus(ptrOf(i), lenOf(i));
}

/** The owner's id, by the return convention. */
export function nhiOwner<T = Bytes>(id: T, out: usize, cap: u32): i32 {
  const i = arg<T>(id, ARG0);
  return hostNhiOwner(ptrOf(i), lenOf(i), out, cap);
}

/** "autonomous", "assistant", "service" or "workflow", by the return convention. */
export function nhiAgentType<T = Bytes>(id: T, out: usize, cap: u32): i32 {
  const i = arg<T>(id, ARG0);
  return hostNhiAgentType(ptrOf(i), lenOf(i), out, cap);
}

/** One of the agent's attributes (key at most 64 bytes), by the return convention; ENOTFOUND when it has none. */
export function nhiAttribute<T = Bytes, K = string>(id: T, key: K, out: usize, cap: u32): i32 {
  const i = arg<T>(id, ARG0);
  const k = arg<K>(key, ARG1);
  return hostNhiAttribute(ptrOf(i), lenOf(i), ptrOf(k), lenOf(k), out, cap);
}

// ---- creto:vault/v1 and creto:vault-reveal/v1 -----------------------------
//
// The extension acts in the vault as "extension:<name>": EDENIED for a
// secret it may not use, ENOTFOUND for one of its own that does not exist.

/** The length of vaultMac's result, an HMAC-SHA256. */
export const MAC_SIZE: u32 = 32;

/**
 * creto:vault/v1 mac (capability "vault"): writes the HMAC-SHA256 of data
 * (at most 1 MiB) keyed by the secret's current version into
 * out[0:MAC_SIZE] and returns MAC_SIZE; the key never enters the sandbox.
 */
export function vaultMac<P = string, N = string>(path: P, name: N, data: Bytes, out: usize): i32 {
  const p = arg<P>(path, ARG0);
  const n = arg<N>(name, ARG1);
  return hostVaultMac(ptrOf(p), lenOf(p), ptrOf(n), lenOf(n), ptrOf(data), lenOf(data), out, MAC_SIZE);
}

/**
 * creto:vault-reveal/v1 reveal (capability "vault-reveal", granted
 * separately): the secret's plaintext, by the return convention. Every
 * read is access-logged, one into a buffer too small included.
 */
export function vaultReveal<P = string, N = string>(path: P, name: N, out: usize, cap: u32): i32 {
  const p = arg<P>(path, ARG0);
  const n = arg<N>(name, ARG1);
  return hostVaultReveal(ptrOf(p), lenOf(p), ptrOf(n), lenOf(n), out, cap);
}

// ---- creto:audit/v1 (capability "audit") ----------------------------------

/** Outcomes of an audited event. */
export const AUDIT_SUCCESS: u32 = 0;
export const AUDIT_FAILURE: u32 = 1;
export const AUDIT_DENIED: u32 = 2;
export const AUDIT_TIMEOUT: u32 = 3;

/**
 * Queues an event for the node's audit log, in the name of the request's
 * principal, and returns 0. what is required (at most 256 bytes);
 * resource (Cedar form by convention) and why may be empty; context is
 * empty or a JSON object of at most 16 string values. EINVAL: the log
 * would refuse it; EUNAVAILABLE: no log here, or past the rate (100 a
 * second).
 */
export function auditEmit<W = string, R = Bytes, Y = string, C = string>(
  what: W, resource: R, why: Y, outcome: u32, context: C,
): i32 {
  const w = arg<W>(what, ARG0);
  const r = arg<R>(resource, ARG1);
  const y = arg<Y>(why, ARG2);
  const c = arg<C>(context, ARG3);
  return hostAuditEmit(ptrOf(w), lenOf(w), ptrOf(r), lenOf(r), ptrOf(y), lenOf(y), outcome, ptrOf(c), lenOf(c));
}

// ---- creto:storage/v1 (capability "storage") ------------------------------
//
// Small encrypted objects owned by the extension's identity
// "extension:<name>". Another identity's objects are EDENIED; no live
// version is ENOTFOUND.

/** Classifications. */
export const CLASS_AGENT_DATA: u32 = 1;
export const CLASS_SANDBOX_STATE: u32 = 2;
export const CLASS_MESSAGE_PAYLOAD: u32 = 3;
export const CLASS_ARTIFACT: u32 = 4;
export const CLASS_SENSITIVE: u32 = 5;
/** Retained for years, undeletable by anyone. */
export const CLASS_COMPLIANCE: u32 = 6;

/** storagePut's ttlS for the node's default lifetime (90 days). */
export const TTL_DEFAULT: i64 = 0;
/** storagePut's ttlS for no expiry. */
export const TTL_NONE: i64 = -1;

/** The length of stat's record. */
export const STAT_SIZE: u32 = 32;

/**
 * An object's metadata: the 32-byte little-endian record storageStat
 * writes, read in place (changetype<ObjectStat>(ptr)): its fields fall
 * where the record's are.
 */
@unmanaged
export class ObjectStat {
  size: u64;
  /** Unix nanoseconds. */
  created: i64;
  /** Unix nanoseconds; 0 when it never expires. */
  expires: i64;
  classification: u32;
  flags: u32;

  /** Whether the object is under compliance retention. */
  retained(): bool {
    return (this.flags & 1) != 0;
  }
}

/**
 * Stores data (at most 1 MiB) as a new version and returns 0. ttlS is the
 * version's lifetime in seconds, TTL_DEFAULT or TTL_NONE; every version
 * counts against the quota until it expires.
 */
export function storagePut<B = string, K = string>(bucket: B, key: K, data: Bytes, cls: u32, ttlS: i64): i32 {
  const b = arg<B>(bucket, ARG0);
  const k = arg<K>(key, ARG1);
  return hostStoragePut(ptrOf(b), lenOf(b), ptrOf(k), lenOf(k), ptrOf(data), lenOf(data), cls, ttlS);
}

/** The latest live version's data, by the return convention. */
export function storageGet<B = string, K = string>(bucket: B, key: K, out: usize, cap: u32): i32 {
  const b = arg<B>(bucket, ARG0);
  const k = arg<K>(key, ARG1);
  return hostStorageGet(ptrOf(b), lenOf(b), ptrOf(k), lenOf(k), out, cap);
}

/** The latest live version's metadata into *out; 0, or a negative code. */
export function storageStat<B = string, K = string>(bucket: B, key: K, out: ObjectStat): i32 {
  const b = arg<B>(bucket, ARG0);
  const k = arg<K>(key, ARG1);
  const n = hostStorageStat(ptrOf(b), lenOf(b), ptrOf(k), lenOf(k), changetype<usize>(out), STAT_SIZE);
  if (n < 0) return n;
  return n == <i32>STAT_SIZE ? 0 : -4; // EINVAL: not a stat record
}

/** Deletes every version and returns 0; all or nothing. */
export function storageDelete<B = string, K = string>(bucket: B, key: K): i32 {
  const b = arg<B>(bucket, ARG0);
  const k = arg<K>(key, ARG1);
  return hostStorageDelete(ptrOf(b), lenOf(b), ptrOf(k), lenOf(k));
}

// ---- creto:consensus/v1 (capability "consensus") --------------------------

/** A buffer this long always holds a timestamp record. */
export const TIMESTAMP_MAX: u32 = 276;

/**
 * A timestamp record, read in place (changetype<Timestamp>(ptr)) from the
 * buffer consensusTimestamp wrote; the node id follows it.
 */
@unmanaged
export class Timestamp {
  /** Strictly increasing across the cluster's timestamps. */
  logical: u64;
  /** Unix nanoseconds, at millisecond precision; not unique. */
  physical: i64;
  flags: u32;

  /** False for a local timestamp, ordered only with its node's. */
  consensus(): bool {
    return (this.flags & 1) != 0;
  }

  /** The issuing node's id, given the record's length. */
  nodeId(n: i32): Bytes {
    return bytes(changetype<usize>(this) + 20, <u32>(n - 20));
  }
}

/**
 * Takes a timestamp in the cluster's total order (or the node's own,
 * flagged, when the cluster cannot give one) into out[0:TIMESTAMP_MAX] and
 * returns the record's length, or a negative code. Read it with
 * changetype<Timestamp>(out).
 */
export function consensusTimestamp(out: usize): i32 {
  const n = hostConsensusTimestamp(out, TIMESTAMP_MAX);
  if (n < 0) return n;
  // Flags other than bit 0 are a record this SDK does not know: refused,
  // as the other SDKs refuse it.
  return n < 20 || n > <i32>TIMESTAMP_MAX || (load<u32>(out + 16) & ~1) != 0 ? -4 : n;
}
