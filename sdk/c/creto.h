/*
 * creto.h - write Creto authorization extensions in C11 (ABI v1, abi/SPEC.md).
 *
 * A single header with no library behind it: everything is static inline,
 * so the compiler keeps only what a guest uses; a guest that compares a
 * field and answers is about half a kilobyte of Wasm. Build with
 *
 *   clang --target=wasm32 -nostdlib -ffreestanding -Oz -mbulk-memory \
 *         -Wl,--no-entry -Wl,--strip-all -Wl,--stack-first -Wl,-z,stack-size=16384 \
 *         -o ext.wasm ext.c
 *
 * The guest defines creto_evaluate (and optionally creto_init); this header
 * provides the rest of the ABI: the creto_abi_1 marker, the I/O arena and
 * creto_io. Requests are read in place and decisions are written in place,
 * so nothing is allocated, by the host or by the guest.
 *
 *   #include "creto.h"
 *
 *   int64_t creto_evaluate(uint32_t n) {
 *       const creto_request *r = creto_request_parse(n);
 *       if (r && creto_str_eq(creto_action_id(r), CRETO_STR("delete")))
 *           return creto_deny(CRETO_STR("no-delete"), CRETO_STR("deletes are blocked"));
 *       return creto_continue();
 *   }
 *
 * A program of several files includes the header everywhere but defines
 * CRETO_NO_EXPORTS in all files but one, so the arena and the exports exist
 * once.
 */
#ifndef CRETO_H
#define CRETO_H

#include <stdbool.h>
#include <stdint.h>

/* Copies compile to memory.copy; without bulk memory they would call a
 * memcpy that a guest without libc does not have. */
#ifndef __wasm_bulk_memory__
#error "creto.h: compile with -mbulk-memory"
#endif

/* The arena holds one request, then the answer. The engine needs 4 KiB at
 * least; requests that do not fit lose their context and attributes, which
 * stay available through creto_request_context and friends. */
#ifndef CRETO_ARENA_SIZE
#define CRETO_ARENA_SIZE 65536
#endif
_Static_assert(CRETO_ARENA_SIZE >= 4096, "the engine refuses arenas under 4 KiB");

#define CRETO_EXPORT(name) __attribute__((export_name(name)))
#define CRETO_IMPORT(module, name) __attribute__((import_module(module), import_name(name)))

/* ---- Results --------------------------------------------------------- */

/* creto_evaluate and creto_init return (status << 32) | length. */
#define CRETO_STATUS_CONTINUE 0
#define CRETO_STATUS_DECISION 1
#define CRETO_STATUS_ERROR 2

/* Decision kinds (SPEC.md 4.2). */
#define CRETO_ALLOW 1
#define CRETO_DENY 2
#define CRETO_REQUIRES_OVERSIGHT 3
#define CRETO_QUOTA_EXCEEDED 4
#define CRETO_RATE_LIMITED 5

/* Request flags: what did not fit the arena (SPEC.md 4.1). */
#define CRETO_FLAG_CONTEXT_OMITTED 1
#define CRETO_FLAG_ATTRIBUTES_OMITTED 2

/* Host-function error codes (SPEC.md 6). */
#define CRETO_EDENIED (-1)
#define CRETO_ENOTFOUND (-2)
#define CRETO_EDEADLINE (-3)
#define CRETO_EINVAL (-4)
#define CRETO_EUNAVAILABLE (-5)

/* Log levels for creto_log. */
#define CRETO_LOG_DEBUG 0
#define CRETO_LOG_INFO 1
#define CRETO_LOG_WARN 2
#define CRETO_LOG_ERROR 3

/* ---- The module's side of the ABI ------------------------------------ */

/* What the guest implements. Declared here so that the export attribute
 * applies to the guest's plain definitions. creto_init is optional. */
CRETO_EXPORT("creto_evaluate") int64_t creto_evaluate(uint32_t request_len);
CRETO_EXPORT("creto_init") int64_t creto_init(uint32_t config_len);

extern uint8_t creto_arena[CRETO_ARENA_SIZE];

#ifndef CRETO_NO_EXPORTS
/* 8-byte alignment keeps the header loads of every record aligned. */
uint8_t creto_arena[CRETO_ARENA_SIZE] __attribute__((aligned(8)));

CRETO_EXPORT("creto_abi_1") void creto_abi_1(void) {}

CRETO_EXPORT("creto_io") int64_t creto_io(void)
{
    return (int64_t)((uint64_t)(uintptr_t)creto_arena << 32 | CRETO_ARENA_SIZE);
}
#endif

/* ---- Strings ---------------------------------------------------------- */

/* A view of UTF-8 bytes, usually into the arena; never NUL-terminated. */
typedef struct {
    const char *ptr;
    uint32_t len;
} creto_str;

/* A view of a string literal, its length known at compile time. */
#define CRETO_STR(lit) ((creto_str){"" lit, sizeof(lit) - 1})

/* A loop, not memcmp: there is no libc to call, and bulk memory has no
 * comparison instruction. */
static inline bool creto__bytes_eq(const char *a, const char *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

static inline bool creto_str_eq(creto_str a, creto_str b)
{
    return a.len == b.len && creto__bytes_eq(a.ptr, b.ptr, a.len);
}

static inline bool creto_str_has_prefix(creto_str s, creto_str prefix)
{
    return s.len >= prefix.len && creto__bytes_eq(s.ptr, prefix.ptr, prefix.len);
}

/* Records are little-endian, like Wasm, and their tables need not be
 * aligned; memcpy compiles to one unaligned load or store. */
static inline uint32_t creto__u32(const uint8_t *p)
{
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}

static inline void creto__put32(uint8_t *p, uint32_t v) { __builtin_memcpy(p, &v, 4); }

static inline void creto__put64(uint8_t *p, int64_t v) { __builtin_memcpy(p, &v, 8); }

/* ---- Reading the request (SPEC.md 4.1) -------------------------------- */

/* The request as the engine wrote it into the arena. */
typedef struct creto_request creto_request;

#define CRETO_REQUEST_MAGIC 0x31515243u /* "CRQ1" */
#define CRETO_REQUEST_HEADER 96u

/* The request in arena[0:n], or NULL when it is not one. The engine is
 * trusted to write in-range offsets (it checks them against the same
 * record), so only the header is verified. */
static inline const creto_request *creto_request_parse(uint32_t n)
{
    if (n < CRETO_REQUEST_HEADER || n > CRETO_ARENA_SIZE || creto__u32(creto_arena) != CRETO_REQUEST_MAGIC)
        return 0;
    return (const creto_request *)creto_arena;
}

static inline creto_str creto__field(const creto_request *r, uint32_t slot)
{
    const uint8_t *b = (const uint8_t *)r;
    return (creto_str){(const char *)b + creto__u32(b + slot), creto__u32(b + slot + 4)};
}

static inline creto_str creto_principal_type(const creto_request *r) { return creto__field(r, 8); }
static inline creto_str creto_principal_id(const creto_request *r) { return creto__field(r, 16); }
static inline creto_str creto_action_type(const creto_request *r) { return creto__field(r, 24); }
static inline creto_str creto_action_id(const creto_request *r) { return creto__field(r, 32); }
static inline creto_str creto_resource_type(const creto_request *r) { return creto__field(r, 40); }
static inline creto_str creto_resource_id(const creto_request *r) { return creto__field(r, 48); }
/* A JSON object; empty when CRETO_FLAG_CONTEXT_OMITTED is set. */
static inline creto_str creto_context(const creto_request *r) { return creto__field(r, 56); }
/* A JSON object; empty when CRETO_FLAG_ATTRIBUTES_OMITTED is set. */
static inline creto_str creto_attributes(const creto_request *r) { return creto__field(r, 64); }
static inline creto_str creto_trace_id(const creto_request *r) { return creto__field(r, 72); }

static inline uint16_t creto_flags(const creto_request *r)
{
    const uint8_t *b = (const uint8_t *)r;
    return (uint16_t)(b[6] | b[7] << 8);
}

/* Cedar's decision so far: CRETO_ALLOW or CRETO_REQUIRES_OVERSIGHT. */
static inline uint32_t creto_outcome(const creto_request *r) { return creto__u32((const uint8_t *)r + 88); }

/* The delegation chain: link 0 is the origin (usually a human), the last
 * link the immediate delegator. */
static inline uint32_t creto_delegation_len(const creto_request *r) { return creto__u32((const uint8_t *)r + 80); }

static inline creto_str creto_delegation_type(const creto_request *r, uint32_t i)
{
    return creto__field(r, creto__u32((const uint8_t *)r + 84) + 16 * i);
}

static inline creto_str creto_delegation_id(const creto_request *r, uint32_t i)
{
    return creto__field(r, creto__u32((const uint8_t *)r + 84) + 16 * i + 8);
}

/* The configuration creto_init receives in arena[0:n]. */
static inline creto_str creto_config(uint32_t n)
{
    return (creto_str){(const char *)creto_arena, n < CRETO_ARENA_SIZE ? n : CRETO_ARENA_SIZE};
}

/* ---- Answering (SPEC.md 3 and 4.2) ------------------------------------ */

/* Every builder writes its record at the start of the arena, over the
 * request. Strings passed to them must therefore not point into the arena:
 * use literals, or copy what the request said into a buffer of your own. */

#define CRETO_DECISION_MAGIC 0x31434443u /* "CDC1" */
#define CRETO_DECISION_HEADER 56u

static inline int64_t creto__result(uint32_t status, uint32_t len) { return (int64_t)((uint64_t)status << 32 | len); }

/* No opinion: the next extension, or Cedar's decision, stands. */
static inline int64_t creto_continue(void) { return 0; }

/* creto_init's answer when the configuration is acceptable. */
static inline int64_t creto_ready(void) { return 0; }

/* A failure the engine handles by the extension's on_error; from
 * creto_init it refuses the configuration and the registration fails. */
static inline int64_t creto_error(creto_str message)
{
    uint32_t n = message.len < CRETO_ARENA_SIZE ? message.len : CRETO_ARENA_SIZE;
    __builtin_memmove(creto_arena, message.ptr, n);
    return creto__result(CRETO_STATUS_ERROR, n);
}

/* Writes s into the string area at *at and its (offset, length) at slot. */
static inline void creto__put_str(uint32_t slot, uint32_t *at, creto_str s)
{
    creto__put32(creto_arena + slot, *at);
    creto__put32(creto_arena + slot + 4, s.len);
    __builtin_memcpy(creto_arena + *at, s.ptr, s.len);
    *at += s.len;
}

/* The one encoder behind every builder: the fields mean different things
 * per kind, but the layout is the same. */
static inline int64_t creto_decision(uint32_t kind, creto_str id, creto_str text, int64_t a, int64_t b, int64_t c,
                                     const creto_str *approvers, uint32_t n)
{
    uint64_t size = CRETO_DECISION_HEADER + (uint64_t)id.len + text.len + 8ull * n;
    for (uint32_t i = 0; i < n; i++)
        size += approvers[i].len;
    if (size > CRETO_ARENA_SIZE)
        return creto_error(CRETO_STR("creto: the decision does not fit the arena"));

    uint32_t at = CRETO_DECISION_HEADER;
    creto__put32(creto_arena, CRETO_DECISION_MAGIC);
    creto__put32(creto_arena + 4, kind);
    creto__put_str(8, &at, id);
    creto__put_str(16, &at, text);
    creto__put64(creto_arena + 24, a);
    creto__put64(creto_arena + 32, b);
    creto__put64(creto_arena + 40, c);
    creto__put32(creto_arena + 48, n);
    creto__put32(creto_arena + 52, at);
    uint32_t table = at;
    at += 8 * n;
    for (uint32_t i = 0; i < n; i++)
        creto__put_str(table + 8 * i, &at, approvers[i]);
    return creto__result(CRETO_STATUS_DECISION, at);
}

/* Allow outright, skipping the extensions after this one. */
static inline int64_t creto_allow(void)
{
    return creto_decision(CRETO_ALLOW, CRETO_STR(""), CRETO_STR(""), 0, 0, 0, 0, 0);
}

/* An empty policy id is reported as "ext:<name>". */
static inline int64_t creto_deny(creto_str policy_id, creto_str reason)
{
    return creto_decision(CRETO_DENY, policy_id, reason, 0, 0, 0, 0, 0);
}

/* A timeout of 0 takes the engine's default. */
static inline int64_t creto_requires_oversight(creto_str policy_id, creto_str requirement, int64_t timeout_ns,
                                               const creto_str *approvers, uint32_t n)
{
    return creto_decision(CRETO_REQUIRES_OVERSIGHT, policy_id, requirement, timeout_ns, 0, 0, approvers, n);
}

/* reset_at_ns is Unix time in nanoseconds, 0 when unknown. */
static inline int64_t creto_quota_exceeded(creto_str quota_id, int64_t limit, int64_t used, int64_t reset_at_ns)
{
    return creto_decision(CRETO_QUOTA_EXCEEDED, quota_id, CRETO_STR(""), limit, used, reset_at_ns, 0, 0);
}

static inline int64_t creto_rate_limited(int64_t retry_after_ns, int64_t remaining)
{
    return creto_decision(CRETO_RATE_LIMITED, CRETO_STR(""), CRETO_STR(""), retry_after_ns, remaining, 0, 0, 0);
}

/* ---- Host functions (SPEC.md 6) --------------------------------------- */

/* A function is imported only when the guest calls it, and the engine
 * refuses imports of capabilities the manifest does not request: list
 * "time" or "state" in manifest.json before using those. */

/* creto:log/v1, always granted. Rate-limited; messages over 1 KiB are cut. */
CRETO_IMPORT("creto:log/v1", "write") void creto_log_write(int32_t level, const char *ptr, uint32_t len);

static inline void creto_log(int32_t level, creto_str message) { creto_log_write(level, message.ptr, message.len); }

/* creto:request/v1, always granted: the context and principal attributes,
 * for when they were omitted from the request. They return the full
 * length, and write nothing when it is over cap. */
CRETO_IMPORT("creto:request/v1", "context") int32_t creto_request_context(char *out, uint32_t cap);
CRETO_IMPORT("creto:request/v1", "principal_attributes")
int32_t creto_request_principal_attributes(char *out, uint32_t cap);

/* creto:time/v1 (capability "time"): Unix time in nanoseconds. */
CRETO_IMPORT("creto:time/v1", "now") int64_t creto_time_now(void);

/* creto:state/v1 (capability "state"): the extension's private store.
 * Keys up to 256 bytes, values up to 64 KiB. */
CRETO_IMPORT("creto:state/v1", "get")
int32_t creto_state_get(const char *key, uint32_t key_len, char *out, uint32_t cap);
CRETO_IMPORT("creto:state/v1", "set")
int32_t creto_state_set(const char *key, uint32_t key_len, const char *value, uint32_t value_len);
/* Adds delta to a counter and returns its new value; with window_ns > 0
 * the counter restarts in every window. */
CRETO_IMPORT("creto:state/v1", "add")
int64_t creto_state_add(const char *key, uint32_t key_len, int64_t delta, int64_t window_ns);

/* ---- Platform modules (SPEC.md 6.6-6.11) ------------------------------- */

/* Each needs its capability in manifest.json ("nhi", "vault",
 * "vault-reveal", "audit", "storage", "consensus") and the operator's
 * grant. Functions returning bytes follow the return convention, like
 * creto_state_get: the result's full length, with nothing written when it
 * is over cap (call again with a buffer at least that long), or a negative
 * CRETO_E* code. The creto__ imports are the raw ABI; call the wrappers. */

CRETO_IMPORT("creto:nhi/v1", "is_registered") int32_t creto__nhi_is_registered(const char *id, uint32_t id_len);
CRETO_IMPORT("creto:nhi/v1", "is_revoked") int32_t creto__nhi_is_revoked(const char *id, uint32_t id_len);
CRETO_IMPORT("creto:nhi/v1", "status") int32_t creto__nhi_status(const char *id, uint32_t id_len);
CRETO_IMPORT("creto:nhi/v1", "owner")
int32_t creto__nhi_owner(const char *id, uint32_t id_len, char *out, uint32_t cap);
CRETO_IMPORT("creto:nhi/v1", "agent_type")
int32_t creto__nhi_agent_type(const char *id, uint32_t id_len, char *out, uint32_t cap);
CRETO_IMPORT("creto:nhi/v1", "attribute")
int32_t creto__nhi_attribute(const char *id, uint32_t id_len, const char *key, uint32_t key_len, char *out, uint32_t cap);

/* creto:nhi/v1 (capability "nhi"): the identity registry's record of an
 * agent, read-only. An id over 128 bytes is CRETO_EINVAL; one the registry
 * does not know CRETO_ENOTFOUND (except for creto_nhi_is_registered). */

/* Agent statuses, as creto_nhi_status returns them. Only ACTIVE may act. */
#define CRETO_NHI_ACTIVE 1
#define CRETO_NHI_SUSPENDED 2
#define CRETO_NHI_REVOKED 3
#define CRETO_NHI_EXPIRED 4 /* active, but past its expiry */

/* 1 when the id was ever registered (revoked agents included), 0 when not. */
static inline int32_t creto_nhi_is_registered(creto_str id) { return creto__nhi_is_registered(id.ptr, id.len); }
/* 1 revoked, 0 not. */
static inline int32_t creto_nhi_is_revoked(creto_str id) { return creto__nhi_is_revoked(id.ptr, id.len); }
/* One of CRETO_NHI_ACTIVE, _SUSPENDED, _REVOKED, _EXPIRED. */
static inline int32_t creto_nhi_status(creto_str id) { return creto__nhi_status(id.ptr, id.len); }
/* The owner's id, by the return convention. */
static inline int32_t creto_nhi_owner(creto_str id, char *out, uint32_t cap)
{
    return creto__nhi_owner(id.ptr, id.len, out, cap);
}
/* "autonomous", "assistant", "service" or "workflow", by the return convention. */
static inline int32_t creto_nhi_agent_type(creto_str id, char *out, uint32_t cap)
{
    return creto__nhi_agent_type(id.ptr, id.len, out, cap);
}
/* One of the agent's attributes (a key is at most 64 bytes), by the return
 * convention; CRETO_ENOTFOUND when it has none. */
static inline int32_t creto_nhi_attribute(creto_str id, creto_str key, char *out, uint32_t cap)
{
    return creto__nhi_attribute(id.ptr, id.len, key.ptr, key.len, out, cap);
}

CRETO_IMPORT("creto:vault/v1", "mac")
int32_t creto__vault_mac(const char *path, uint32_t path_len, const char *name, uint32_t name_len, const uint8_t *data,
                         uint32_t data_len, uint8_t *out, uint32_t cap);
CRETO_IMPORT("creto:vault-reveal/v1", "reveal")
int32_t creto__vault_reveal(const char *path, uint32_t path_len, const char *name, uint32_t name_len, char *out,
                            uint32_t cap);

/* creto:vault/v1 (capability "vault") and creto:vault-reveal/v1 (capability
 * "vault-reveal", granted separately). The extension acts in the vault as
 * "extension:<name>": CRETO_EDENIED for a secret it may not use,
 * CRETO_ENOTFOUND for one of its own that does not exist. */

#define CRETO_MAC_SIZE 32

/* Writes the HMAC-SHA256 of data (at most 1 MiB) keyed by the secret's
 * current version and returns CRETO_MAC_SIZE; the key never enters the
 * sandbox. */
static inline int32_t creto_vault_mac(creto_str path, creto_str name, const uint8_t *data, uint32_t data_len,
                                      uint8_t out[CRETO_MAC_SIZE])
{
    return creto__vault_mac(path.ptr, path.len, name.ptr, name.len, data, data_len, out, CRETO_MAC_SIZE);
}
/* The secret's plaintext, by the return convention. Every read is in the
 * secret's access log, a read into a buffer too small included. */
static inline int32_t creto_vault_reveal(creto_str path, creto_str name, char *out, uint32_t cap)
{
    return creto__vault_reveal(path.ptr, path.len, name.ptr, name.len, out, cap);
}

CRETO_IMPORT("creto:audit/v1", "emit")
int32_t creto__audit_emit(const char *what, uint32_t what_len, const char *resource, uint32_t resource_len,
                          const char *why, uint32_t why_len, uint32_t outcome, const char *ctx, uint32_t ctx_len);

/* creto:audit/v1 (capability "audit"): an event for the node's audit log,
 * in the name of the request's principal (the host says who and when). */

/* Outcomes of an event. */
#define CRETO_AUDIT_SUCCESS 0
#define CRETO_AUDIT_FAILURE 1
#define CRETO_AUDIT_DENIED 2
#define CRETO_AUDIT_TIMEOUT 3

/* Queues the event and returns 0. what is required (at most 256 bytes);
 * resource (Cedar form by convention) and why may be empty; context is
 * empty or a JSON object of at most 16 string values. CRETO_EINVAL: the
 * log would refuse it; CRETO_EUNAVAILABLE: no log here, or past the rate
 * (100 a second). */
static inline int32_t creto_audit_emit(creto_str what, creto_str resource, creto_str why, uint32_t outcome,
                                       creto_str context)
{
    return creto__audit_emit(what.ptr, what.len, resource.ptr, resource.len, why.ptr, why.len, outcome, context.ptr,
                             context.len);
}

CRETO_IMPORT("creto:storage/v1", "put")
int32_t creto__storage_put(const char *bucket, uint32_t bucket_len, const char *key, uint32_t key_len,
                           const uint8_t *data, uint32_t data_len, uint32_t class_, int64_t ttl_s);
CRETO_IMPORT("creto:storage/v1", "get")
int32_t creto__storage_get(const char *bucket, uint32_t bucket_len, const char *key, uint32_t key_len, uint8_t *out,
                           uint32_t cap);
CRETO_IMPORT("creto:storage/v1", "stat")
int32_t creto__storage_stat(const char *bucket, uint32_t bucket_len, const char *key, uint32_t key_len, uint8_t *out,
                            uint32_t cap);
CRETO_IMPORT("creto:storage/v1", "delete")
int32_t creto__storage_delete(const char *bucket, uint32_t bucket_len, const char *key, uint32_t key_len);

/* creto:storage/v1 (capability "storage"): small encrypted objects owned
 * by the extension's identity "extension:<name>". Another identity's
 * objects are CRETO_EDENIED; no live version is CRETO_ENOTFOUND. */

/* Classifications. */
#define CRETO_CLASS_AGENT_DATA 1
#define CRETO_CLASS_SANDBOX_STATE 2
#define CRETO_CLASS_MESSAGE_PAYLOAD 3
#define CRETO_CLASS_ARTIFACT 4
#define CRETO_CLASS_SENSITIVE 5
#define CRETO_CLASS_COMPLIANCE 6 /* retained for years, undeletable */

/* ttl_s of creto_storage_put besides a number of seconds. */
#define CRETO_TTL_DEFAULT 0 /* the node's default, 90 days */
#define CRETO_TTL_NONE (-1)

/* An object's metadata (stat's 32-byte record). */
typedef struct {
    uint64_t size;
    int64_t created; /* Unix nanoseconds */
    int64_t expires; /* Unix nanoseconds; 0: never */
    uint32_t class_;
    uint32_t flags; /* CRETO_STAT_RETAINED */
} creto_object_stat;

#define CRETO_STAT_RETAINED 1 /* under compliance retention */

/* Stores data (at most 1 MiB) as a new version and returns 0. Every
 * version counts against the quota until it expires: keep counters in
 * creto:state/v1. */
static inline int32_t creto_storage_put(creto_str bucket, creto_str key, const uint8_t *data, uint32_t data_len,
                                        uint32_t class_, int64_t ttl_s)
{
    return creto__storage_put(bucket.ptr, bucket.len, key.ptr, key.len, data, data_len, class_, ttl_s);
}
/* The latest live version's data, by the return convention. */
static inline int32_t creto_storage_get(creto_str bucket, creto_str key, uint8_t *out, uint32_t cap)
{
    return creto__storage_get(bucket.ptr, bucket.len, key.ptr, key.len, out, cap);
}
/* The latest live version's metadata into *st; 0, or a negative code. */
static inline int32_t creto_storage_stat(creto_str bucket, creto_str key, creto_object_stat *st)
{
    uint8_t rec[32];
    int32_t n = creto__storage_stat(bucket.ptr, bucket.len, key.ptr, key.len, rec, sizeof rec);
    if (n < 0)
        return n;
    if (n != (int32_t)sizeof rec)
        return CRETO_EINVAL;
    __builtin_memcpy(&st->size, rec, 8);
    __builtin_memcpy(&st->created, rec + 8, 8);
    __builtin_memcpy(&st->expires, rec + 16, 8);
    st->class_ = creto__u32(rec + 24);
    st->flags = creto__u32(rec + 28);
    return 0;
}
/* Deletes every version and returns 0; all or nothing. */
static inline int32_t creto_storage_delete(creto_str bucket, creto_str key)
{
    return creto__storage_delete(bucket.ptr, bucket.len, key.ptr, key.len);
}

CRETO_IMPORT("creto:consensus/v1", "timestamp") int32_t creto__consensus_timestamp(uint8_t *out, uint32_t cap);

/* creto:consensus/v1 (capability "consensus"): timestamps in the cluster's
 * total order, or the node's own, flagged, when the cluster cannot give
 * one; a guest never waits on a lost quorum. */

/* A buffer this long always holds the record. */
#define CRETO_TIMESTAMP_MAX 276

typedef struct {
    uint64_t logical; /* strictly increasing across the cluster */
    int64_t physical; /* Unix nanoseconds, millisecond precision */
    bool consensus;   /* false: a local timestamp, ordered only with its node's */
    creto_str node_id; /* a view into the buffer it was read from */
} creto_timestamp;

/* Takes a timestamp into buf (CRETO_TIMESTAMP_MAX bytes) and decodes it
 * into *ts; 0, or a negative code. */
static inline int32_t creto_consensus_timestamp(uint8_t buf[CRETO_TIMESTAMP_MAX], creto_timestamp *ts)
{
    int32_t n = creto__consensus_timestamp(buf, CRETO_TIMESTAMP_MAX);
    if (n < 0)
        return n;
    if (n < 20 || n > CRETO_TIMESTAMP_MAX)
        return CRETO_EINVAL;
    uint32_t flags = creto__u32(buf + 16);
    if (flags & ~1u)
        return CRETO_EINVAL;
    __builtin_memcpy(&ts->logical, buf, 8);
    __builtin_memcpy(&ts->physical, buf + 8, 8);
    ts->consensus = flags & 1;
    ts->node_id = (creto_str){(const char *)buf + 20, (uint32_t)n - 20};
    return 0;
}

/* ---- JSON ------------------------------------------------------------- */

/* Just enough JSON to pick values out of the context, the attributes or a
 * configuration without copying them: a lookup of top-level keys, and
 * readers for integers and strings. Anything malformed reads as missing. */

static inline bool creto__json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static inline const char *creto__json_ws(const char *p, const char *end)
{
    while (p < end && creto__json_space(*p))
        p++;
    return p;
}

/* The end of the string that starts at p (a quote), or NULL when it is
 * not terminated. */
static inline const char *creto__json_string_end(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return 0;
}

/* The end of the value that starts at p, or NULL: objects and arrays are
 * skipped by counting brackets outside strings. */
static inline const char *creto__json_value_end(const char *p, const char *end)
{
    if (p < end && *p == '"')
        return creto__json_string_end(p, end);
    if (p < end && (*p == '{' || *p == '[')) {
        for (uint32_t depth = 0; p && p < end;) {
            if (*p == '"') {
                p = creto__json_string_end(p, end);
                continue;
            }
            if (*p == '{' || *p == '[')
                depth++;
            else if ((*p == '}' || *p == ']') && --depth == 0)
                return p + 1;
            p++;
        }
        return 0;
    }
    const char *start = p;
    while (p < end && !creto__json_space(*p) && *p != ',' && *p != '}' && *p != ']')
        p++;
    return p > start ? p : 0;
}

/* creto_json_get's scan, on plain pointers: views passed by value go
 * through memory in the Wasm C ABI, which costs more code than the scan. */
static inline const char *creto__json_find(const char *p, const char *end, const char *key, uint32_t key_len,
                                           const char **value_end)
{
    p = creto__json_ws(p, end);
    if (p >= end || *p != '{')
        return 0;
    for (p = creto__json_ws(p + 1, end); p < end && *p == '"';) {
        const char *key_end = creto__json_string_end(p, end);
        if (!key_end)
            return 0;
        const char *k = p + 1;
        p = creto__json_ws(key_end, end);
        if (p >= end || *p != ':')
            return 0;
        const char *value = creto__json_ws(p + 1, end);
        if (!(*value_end = creto__json_value_end(value, end)))
            return 0;
        if ((uint32_t)(key_end - k - 1) == key_len && creto__bytes_eq(k, key, key_len))
            return value;
        p = creto__json_ws(*value_end, end);
        if (p >= end || *p != ',')
            return 0;
        p = creto__json_ws(p + 1, end);
    }
    return 0;
}

/* The raw value of key in the object obj ({NULL, 0} when absent). Keys are
 * compared as written, escapes included. */
static inline creto_str creto_json_get(creto_str obj, creto_str key)
{
    const char *end;
    const char *value = creto__json_find(obj.ptr, obj.ptr + obj.len, key.ptr, key.len, &end);
    return (creto_str){value, value ? (uint32_t)(end - value) : 0};
}

/* Reads a JSON number as an integer, dropping any fraction (so 9.99 reads
 * as 9). Exponents and values past 18 digits are refused rather than
 * misread. */
static inline bool creto_json_int(creto_str v, int64_t *out)
{
    const char *p = v.ptr, *end = v.ptr + v.len;
    bool negative = p < end && *p == '-';
    p += negative;
    const char *digits = p;
    int64_t n = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++)
        n = n * 10 + (*p - '0');
    if (p == digits || p - digits > 18)
        return false;
    if (p < end && *p == '.')
        for (p++; p < end && *p >= '0' && *p <= '9'; p++)
            ;
    if (p != end)
        return false;
    *out = negative ? -n : n;
    return true;
}

/* The contents of a JSON string value, between its quotes; escapes are
 * left as written. */
static inline bool creto_json_string(creto_str v, creto_str *out)
{
    if (v.len < 2 || v.ptr[0] != '"' || creto__json_string_end(v.ptr, v.ptr + v.len) != v.ptr + v.len)
        return false;
    *out = (creto_str){v.ptr + 1, v.len - 2};
    return true;
}

#endif /* CRETO_H */
