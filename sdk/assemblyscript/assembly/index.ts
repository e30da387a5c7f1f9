// Creto extension SDK for AssemblyScript (ABI v1, abi/SPEC.md).
//
// Build with `asc ext.ts --runtime stub -Oz --noAssert --use abort=`. The
// stub runtime never frees, so nothing here allocates: requests are read
// in place as `Bytes` views, and decisions are encoded straight into the
// I/O arena. An extension's entry file re-exports the ABI marker and the
// arena, and defines creto_evaluate (and optionally creto_init):
//
//   export { creto_abi_1, creto_io } from "@creto/extension-sdk/assembly";
//   import { CONTINUE, actionId, deny, equals, isRequest } from "@creto/extension-sdk/assembly";
//
//   export function creto_evaluate(n: u32): u64 {
//     if (isRequest(n) && equals(actionId(), "delete")) return deny("no-delete", "deletes are blocked");
//     return CONTINUE;
//   }

// ---- The arena (SPEC.md 3) -------------------------------------------

/** Size of the I/O arena; the engine needs at least 4 KiB. */
export const ARENA_SIZE: i32 = 65536;

// Static memory: it exists before any code runs and never moves, which is
// what the engine requires of the arena.
const ARENA: usize = memory.data(ARENA_SIZE, 16);

/** The ABI v1 marker; re-export it from the entry file. */
export function creto_abi_1(): void {}

/** Where the arena is; re-export it from the entry file. */
export function creto_io(): u64 {
  return ((<u64>ARENA) << 32) | <u64>ARENA_SIZE;
}

// ---- Results ----------------------------------------------------------

/** creto_evaluate's answer when the extension has no opinion. */
export const CONTINUE: u64 = 0;
/** creto_init's answer when the configuration is acceptable. */
export const READY: u64 = 0;

export const STATUS_DECISION: u64 = 1;
export const STATUS_ERROR: u64 = 2;

// Decision kinds (SPEC.md 4.2).
export const ALLOW: u32 = 1;
export const DENY: u32 = 2;
export const REQUIRES_OVERSIGHT: u32 = 3;
export const QUOTA_EXCEEDED: u32 = 4;
export const RATE_LIMITED: u32 = 5;

// Request flags: what did not fit the arena (SPEC.md 4.1).
export const FLAG_CONTEXT_OMITTED: u32 = 1;
export const FLAG_ATTRIBUTES_OMITTED: u32 = 2;

// Host-function error codes (SPEC.md 6).
export const EDENIED: i32 = -1;
export const ENOTFOUND: i32 = -2;
export const EDEADLINE: i32 = -3;
export const EINVAL: i32 = -4;
export const EUNAVAILABLE: i32 = -5;

// ---- Bytes --------------------------------------------------------------

/**
 * A view of UTF-8 bytes in linear memory, packed as (address << 32) |
 * length: a plain number, so views cost no allocation. 0 means "none".
 */
export type Bytes = u64;

export const NONE: Bytes = 0;

// @ts-ignore: decorator
@inline export function bytes(ptr: usize, len: u32): Bytes {
  return ((<u64>ptr) << 32) | <u64>len;
}

// @ts-ignore: decorator
@inline export function ptrOf(b: Bytes): usize {
  return <usize>(b >> 32);
}

// @ts-ignore: decorator
@inline export function lenOf(b: Bytes): u32 {
  return <u32>b;
}

/** Whether the bytes spell s (compared as UTF-8, without encoding s). */
export function equals(b: Bytes, s: string): bool {
  return matchUTF8(b, s, false);
}

/** Whether the bytes begin with s. */
export function startsWith(b: Bytes, s: string): bool {
  return matchUTF8(b, s, true);
}

/** Whether two views hold the same bytes. */
export function bytesEqual(a: Bytes, b: Bytes): bool {
  return lenOf(a) == lenOf(b) && memory.compare(ptrOf(a), ptrOf(b), lenOf(a)) == 0;
}

/** A copy as a string. It allocates, and the stub runtime never frees:
 * use it for diagnostics, not on every call. */
export function bytesToString(b: Bytes): string {
  return String.UTF8.decodeUnsafe(ptrOf(b), lenOf(b));
}

// Compares UTF-8 bytes with a UTF-16 string by encoding the string in
// chunks into a small buffer: no allocation, and the same encoder the
// builders use rather than a second one.
const CHUNK: i32 = 64; // UTF-16 units: at most 192 bytes of UTF-8
const SCRATCH: usize = memory.data(3 * CHUNK);

function matchUTF8(b: Bytes, s: string, prefix: bool): bool {
  let p = ptrOf(b);
  const end = p + lenOf(b);
  const str = changetype<usize>(s);
  const n = s.length;
  for (let i = 0; i < n; ) {
    let k = min(n - i, CHUNK);
    // Never split a surrogate pair across chunks.
    if (k < n - i && (load<u16>(str + ((<usize>(i + k - 1)) << 1)) & 0xfc00) == 0xd800) k--;
    const w = String.UTF8.encodeUnsafe(str + ((<usize>i) << 1), k, SCRATCH);
    if (p + w > end || memory.compare(p, SCRATCH, w) != 0) return false;
    p += w;
    i += k;
  }
  return prefix || p == end;
}

// ---- Reading the request (SPEC.md 4.1) ----------------------------------

const REQUEST_MAGIC: u32 = 0x31515243; // "CRQ1"
const REQUEST_HEADER: u32 = 96;

/**
 * Whether arena[0:n] holds a request. The engine is trusted to write
 * in-range offsets (it checks them against the same record), so only the
 * header is verified; the readers below then read the arena in place.
 */
export function isRequest(n: u32): bool {
  return n >= REQUEST_HEADER && n <= <u32>ARENA_SIZE && load<u32>(ARENA) == REQUEST_MAGIC;
}

// @ts-ignore: decorator
@inline function field(slot: usize): Bytes {
  return bytes(ARENA + load<u32>(ARENA + slot), load<u32>(ARENA + slot, 4));
}

export function principalType(): Bytes {
  return field(8);
}
export function principalId(): Bytes {
  return field(16);
}
export function actionType(): Bytes {
  return field(24);
}
export function actionId(): Bytes {
  return field(32);
}
export function resourceType(): Bytes {
  return field(40);
}
export function resourceId(): Bytes {
  return field(48);
}
/** A JSON object; empty when FLAG_CONTEXT_OMITTED is set (see requestContext). */
export function context(): Bytes {
  return field(56);
}
/** A JSON object; empty when FLAG_ATTRIBUTES_OMITTED is set. */
export function attributes(): Bytes {
  return field(64);
}
export function traceId(): Bytes {
  return field(72);
}
export function flags(): u32 {
  return <u32>load<u16>(ARENA, 6);
}
/** Cedar's decision so far: ALLOW or REQUIRES_OVERSIGHT. */
export function outcome(): u32 {
  return load<u32>(ARENA, 88);
}
/** The length of the delegation chain: link 0 is the origin, the last link the immediate delegator. */
export function delegationLen(): u32 {
  return load<u32>(ARENA, 80);
}
export function delegationType(i: u32): Bytes {
  return field(<usize>load<u32>(ARENA, 84) + 16 * <usize>i);
}
export function delegationId(i: u32): Bytes {
  return field(<usize>load<u32>(ARENA, 84) + 16 * <usize>i + 8);
}

/** The configuration creto_init receives in arena[0:n]. */
export function config(n: u32): Bytes {
  return bytes(ARENA, min(n, <u32>ARENA_SIZE));
}

// ---- Answering (SPEC.md 3 and 4.2) ----------------------------------------
//
// Every builder writes its record at the start of the arena, over the
// request. Strings given to them are either string literals (encoded as
// they are written) or Bytes that do not point into the arena: copy what
// the request said into memory of your own first.

const DECISION_MAGIC: u32 = 0x31434443; // "CDC1"
const DECISION_HEADER: u32 = 56;

// @ts-ignore: decorator
@inline function result(status: u64, len: u32): u64 {
  return (status << 32) | <u64>len;
}

// An upper bound of the encoded size: a UTF-16 unit never takes more than
// 3 bytes of UTF-8. Bounding rather than measuring keeps the check cheap;
// it only matters for records near the arena's size.
function maxLength<T>(s: T): u64 {
  if (isString<T>()) return 3 * <u64>changetype<string>(s).length;
  return <u64>lenOf(<Bytes>s);
}

// Writes s at arena[at] and its (offset, length) at slot; returns the
// offset after it.
function putStr<T>(slot: u32, at: u32, s: T): u32 {
  let n: u32;
  if (isString<T>()) {
    const str = changetype<string>(s);
    n = <u32>String.UTF8.encodeUnsafe(changetype<usize>(str), str.length, ARENA + at);
  } else {
    n = lenOf(<Bytes>s);
    memory.copy(ARENA + at, ptrOf(<Bytes>s), n);
  }
  store<u32>(ARENA + slot, at);
  store<u32>(ARENA + slot, n, 4);
  return at + n;
}

/**
 * The encoder behind every builder: the fields mean different things per
 * kind (SPEC.md 4.2) but the layout is the same. `I` and `T` are string or
 * Bytes.
 */
export function decision<I, T>(
  kind: u32,
  id: I,
  text: T,
  a: i64,
  b: i64,
  c: i64,
  approvers: StaticArray<string> | null,
): u64 {
  const n: u32 = approvers ? <u32>approvers.length : 0;
  let size = <u64>DECISION_HEADER + maxLength<I>(id) + maxLength<T>(text) + 8 * <u64>n;
  for (let i: u32 = 0; i < n; i++) size += maxLength<string>(unchecked(approvers![i]));
  if (size > <u64>ARENA_SIZE) return error("creto: the decision does not fit the arena");

  store<u32>(ARENA, DECISION_MAGIC);
  store<u32>(ARENA, kind, 4);
  let at = putStr<I>(8, DECISION_HEADER, id);
  at = putStr<T>(16, at, text);
  store<i64>(ARENA, a, 24);
  store<i64>(ARENA, b, 32);
  store<i64>(ARENA, c, 40);
  store<u32>(ARENA, n, 48);
  store<u32>(ARENA, at, 52);
  const table = at;
  at += 8 * n;
  for (let i: u32 = 0; i < n; i++) at = putStr<string>(table + 8 * i, at, unchecked(approvers![i]));
  return result(STATUS_DECISION, at);
}

/** Allow outright, skipping the extensions after this one. */
export function allow(): u64 {
  return decision<string, string>(ALLOW, "", "", 0, 0, 0, null);
}

/** Deny; an empty policy id is reported as "ext:<name>". */
export function deny<I = string, T = string>(policyId: I, reason: T): u64 {
  return decision<I, T>(DENY, policyId, reason, 0, 0, 0, null);
}

/**
 * Hold the request for human approval. A timeout of 0 takes the engine's
 * default. Keep approvers in a top-level const: an array literal written
 * inside a function is allocated on every call.
 */
export function requiresOversight<I = string, T = string>(
  policyId: I,
  requirement: T,
  timeoutNs: i64,
  approvers: StaticArray<string> | null = null,
): u64 {
  return decision<I, T>(REQUIRES_OVERSIGHT, policyId, requirement, timeoutNs, 0, 0, approvers);
}

/** resetAtNs is Unix time in nanoseconds, 0 when unknown. */
export function quotaExceeded<I = string>(quotaId: I, limit: i64, used: i64, resetAtNs: i64 = 0): u64 {
  return decision<I, string>(QUOTA_EXCEEDED, quotaId, "", limit, used, resetAtNs, null);
}

export function rateLimited(retryAfterNs: i64, remaining: i64): u64 {
  return decision<string, string>(RATE_LIMITED, "", "", retryAfterNs, remaining, 0, null);
}

/**
 * A failure, handled by the extension's on_error; from creto_init it
 * refuses the configuration and the registration fails.
 */
export function error<T = string>(message: T): u64 {
  let n: u32;
  if (isString<T>()) {
    const s = changetype<string>(message);
    // A UTF-16 unit never takes more than 3 bytes, so this bound keeps
    // the encoding inside the arena.
    n = <u32>String.UTF8.encodeUnsafe(changetype<usize>(s), min(s.length, ARENA_SIZE / 3), ARENA);
  } else {
    n = min(lenOf(<Bytes>message), <u32>ARENA_SIZE);
    memory.copy(ARENA, ptrOf(<Bytes>message), n);
  }
  return result(STATUS_ERROR, n);
}

// ---- Host functions (SPEC.md 6) -------------------------------------------
//
// A function is imported only when the extension calls it, and the engine
// refuses imports of capabilities the manifest does not request: list
// "time" or "state" in manifest.json before using those.

// @ts-ignore: decorator
@external("creto:log/v1", "write")
declare function hostLog(level: i32, ptr: usize, len: u32): void;

// @ts-ignore: decorator
@external("creto:request/v1", "context")
declare function hostContext(out: usize, cap: u32): i32;

// @ts-ignore: decorator
@external("creto:request/v1", "principal_attributes")
declare function hostAttributes(out: usize, cap: u32): i32;

// @ts-ignore: decorator
@external("creto:time/v1", "now")
declare function hostNow(): i64;

// @ts-ignore: decorator
@external("creto:state/v1", "get")
declare function hostStateGet(key: usize, keyLen: u32, out: usize, cap: u32): i32;

// @ts-ignore: decorator
@external("creto:state/v1", "set")
declare function hostStateSet(key: usize, keyLen: u32, value: usize, valueLen: u32): i32;

// @ts-ignore: decorator
@external("creto:state/v1", "add")
declare function hostStateAdd(key: usize, keyLen: u32, delta: i64, windowNs: i64): i64;

export const LOG_DEBUG: i32 = 0;
export const LOG_INFO: i32 = 1;
export const LOG_WARN: i32 = 2;
export const LOG_ERROR: i32 = 3;

// Log messages are capped at 1 KiB and state keys at 256 bytes, so strings
// are encoded into small buffers of their own rather than the arena, which
// may still hold the request.
const LOG_BUFFER_SIZE: i32 = 1024;
const LOG_BUFFER: usize = memory.data(LOG_BUFFER_SIZE);
const KEY_BUFFER_SIZE: i32 = 256;
const KEY_BUFFER: usize = memory.data(KEY_BUFFER_SIZE);

function encodeInto(s: string, buf: usize, cap: i32): u32 {
  return <u32>String.UTF8.encodeUnsafe(changetype<usize>(s), min(s.length, cap / 3), buf);
}

/** creto:log/v1 write (always granted); rate-limited by the engine. */
export function log(level: i32, message: string): void {
  hostLog(level, LOG_BUFFER, encodeInto(message, LOG_BUFFER, LOG_BUFFER_SIZE));
}

export function logBytes(level: i32, message: Bytes): void {
  hostLog(level, ptrOf(message), lenOf(message));
}

/**
 * creto:request/v1 context (always granted), for when the request omitted
 * it. Returns the full length, and writes nothing when that is over cap.
 */
export function requestContext(out: usize, cap: u32): i32 {
  return hostContext(out, cap);
}

/** creto:request/v1 principal_attributes; as requestContext. */
export function requestPrincipalAttributes(out: usize, cap: u32): i32 {
  return hostAttributes(out, cap);
}

/** creto:time/v1 now (capability "time"): Unix time in nanoseconds. */
export function timeNow(): i64 {
  return hostNow();
}

/** creto:state/v1 get (capability "state"): the value's length, ENOTFOUND, or more than cap (nothing written). */
export function stateGet(key: string, out: usize, cap: u32): i32 {
  return hostStateGet(KEY_BUFFER, encodeInto(key, KEY_BUFFER, KEY_BUFFER_SIZE), out, cap);
}

/** creto:state/v1 set: 0 on success. Values up to 64 KiB. */
export function stateSet(key: string, value: Bytes): i32 {
  return hostStateSet(KEY_BUFFER, encodeInto(key, KEY_BUFFER, KEY_BUFFER_SIZE), ptrOf(value), lenOf(value));
}

/**
 * creto:state/v1 add: adds delta to a counter and returns its new value;
 * with windowNs > 0 the counter restarts in every window.
 */
export function stateAdd(key: string, delta: i64, windowNs: i64 = 0): i64 {
  return hostStateAdd(KEY_BUFFER, encodeInto(key, KEY_BUFFER, KEY_BUFFER_SIZE), delta, windowNs);
}

// ---- JSON -------------------------------------------------------------------
//
// Just enough JSON to pick values out of the context, the attributes or a
// configuration without copying them: a lookup of top-level keys, and
// readers for integers and strings. Anything malformed reads as missing.

// @ts-ignore: decorator
@inline function at(p: usize): u32 {
  return <u32>load<u8>(p);
}

function isSpace(c: u32): bool {
  return c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d;
}

function skipSpace(p: usize, end: usize): usize {
  while (p < end && isSpace(at(p))) p++;
  return p;
}

// The address after the string starting at p (a quote), or end + 1 when
// it is not terminated.
function stringEnd(p: usize, end: usize): usize {
  for (p++; p < end; p++) {
    const c = at(p);
    if (c == 0x5c) p++; // backslash: skip the escaped character
    else if (c == 0x22) return p + 1;
  }
  return end + 1;
}

// The address after the value starting at p: objects and arrays are
// skipped by counting brackets outside strings.
function valueEnd(p: usize, end: usize): usize {
  if (p >= end) return end + 1;
  let c = at(p);
  if (c == 0x22) return stringEnd(p, end);
  if (c == 0x7b || c == 0x5b) {
    let depth = 0;
    while (p < end) {
      c = at(p);
      if (c == 0x22) {
        p = stringEnd(p, end);
        continue;
      }
      if (c == 0x7b || c == 0x5b) depth++;
      else if ((c == 0x7d || c == 0x5d) && --depth == 0) return p + 1;
      p++;
    }
    return end + 1;
  }
  while (p < end && !(isSpace(at(p)) || at(p) == 0x2c || at(p) == 0x7d || at(p) == 0x5d)) p++;
  return p;
}

/**
 * The raw value of a top-level key of a JSON object, or NONE. Keys are
 * compared as written, escapes included. `K` is string or Bytes.
 */
export function jsonGet<K = string>(obj: Bytes, key: K): Bytes {
  const end = ptrOf(obj) + lenOf(obj);
  let p = skipSpace(ptrOf(obj), end);
  if (p >= end || at(p) != 0x7b) return NONE;
  p = skipSpace(p + 1, end);
  while (p < end && at(p) == 0x22) {
    const keyEnd = stringEnd(p, end);
    if (keyEnd > end) return NONE;
    const k = bytes(p + 1, <u32>(keyEnd - p - 2));
    p = skipSpace(keyEnd, end);
    if (p >= end || at(p) != 0x3a) return NONE;
    const start = skipSpace(p + 1, end);
    const stop = valueEnd(start, end);
    if (stop > end || stop == start) return NONE;
    if (isString<K>()) {
      if (equals(k, changetype<string>(key))) return bytes(start, <u32>(stop - start));
    } else if (bytesEqual(k, <Bytes>key)) {
      return bytes(start, <u32>(stop - start));
    }
    p = skipSpace(stop, end);
    if (p >= end || at(p) != 0x2c) return NONE;
    p = skipSpace(p + 1, end);
  }
  return NONE;
}

/**
 * A JSON number as an integer, dropping any fraction (9.99 reads as 9), or
 * `missing` when the value is not a number this reads: exponents and
 * values past 18 digits are refused rather than misread.
 */
export function jsonInt(value: Bytes, missing: i64 = i64.MIN_VALUE): i64 {
  let p = ptrOf(value);
  const end = p + lenOf(value);
  const negative = p < end && at(p) == 0x2d;
  if (negative) p++;
  let n: i64 = 0;
  let digits = 0;
  for (; p < end && at(p) - 0x30 < 10; p++, digits++) n = n * 10 + <i64>(at(p) - 0x30);
  if (digits == 0 || digits > 18) return missing;
  if (p < end && at(p) == 0x2e) for (p++; p < end && at(p) - 0x30 < 10; p++);
  if (p != end) return missing;
  return negative ? -n : n;
}

/** The contents of a JSON string value, between its quotes, escapes left as written; NONE when not a string. */
export function jsonString(value: Bytes): Bytes {
  const p = ptrOf(value);
  const end = p + lenOf(value);
  if (lenOf(value) < 2 || at(p) != 0x22 || stringEnd(p, end) != end) return NONE;
  return bytes(p + 1, lenOf(value) - 2);
}

export * from "./platform";
