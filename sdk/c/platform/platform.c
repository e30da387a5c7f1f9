/*
 * The C SDK's platform guest: examples/wasm/platform_test.go drives it,
 * like every SDK's, through the engine against the real host modules. Each
 * action calls one binding on the request's principal id (p) and resource
 * id (r) and reports what it got as a quota decision: id the text, limit
 * the number (a negative CRETO_E* code on an error), used and reset two
 * more numbers. Byte results are read with a 16-byte buffer first, so the
 * return convention's retry is exercised on every long one.
 */
#include "../creto.h"

#define BUCKET CRETO_STR("platform")
#define SECRET CRETO_STR("SIGNING")

static char out[8192];

/* A function that reads a byte result about p and r into out[0:cap]. */
typedef int32_t (*reader)(creto_str p, creto_str r, char *out, uint32_t cap);

static int32_t owner(creto_str p, creto_str r, char *o, uint32_t cap) { (void)r; return creto_nhi_owner(p, o, cap); }
static int32_t agent_type(creto_str p, creto_str r, char *o, uint32_t cap) { (void)r; return creto_nhi_agent_type(p, o, cap); }
static int32_t attribute(creto_str p, creto_str r, char *o, uint32_t cap) { return creto_nhi_attribute(p, r, o, cap); }
static int32_t reveal(creto_str p, creto_str r, char *o, uint32_t cap) { (void)p; return creto_vault_reveal(r, SECRET, o, cap); }
static int32_t get(creto_str p, creto_str r, char *o, uint32_t cap)
{
    (void)p;
    return creto_storage_get(BUCKET, r, (uint8_t *)o, cap);
}

static int64_t number(int64_t n) { return creto_quota_exceeded((creto_str){0, 0}, n, 0, 0); }

/* Reads with a small buffer, then one of the reported length; reports the
 * text and n (its length when with_len, else 0), or the code. */
static int64_t fetch(reader f, creto_str p, creto_str r, bool with_len)
{
    uint32_t cap = 16;
    for (;;) {
        int32_t n = f(p, r, out, cap);
        if (n < 0)
            return number(n);
        if ((uint32_t)n <= cap)
            return creto_quota_exceeded((creto_str){out, (uint32_t)n}, with_len ? n : 0, 0, 0);
        if ((uint32_t)n > sizeof out)
            return creto_error(CRETO_STR("platform: result too large"));
        cap = (uint32_t)n;
    }
}

static int64_t mac(creto_str p, creto_str r)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t m[CRETO_MAC_SIZE];
    int32_t n = creto_vault_mac(r, SECRET, (const uint8_t *)p.ptr, p.len, m);
    if (n < 0)
        return number(n);
    for (int i = 0; i < CRETO_MAC_SIZE; i++) {
        out[2 * i] = digits[m[i] >> 4];
        out[2 * i + 1] = digits[m[i] & 15];
    }
    return creto_quota_exceeded((creto_str){out, 2 * CRETO_MAC_SIZE}, n, 0, 0);
}

static int64_t stat(creto_str r)
{
    creto_object_stat st;
    int32_t n = creto_storage_stat(BUCKET, r, &st);
    if (n < 0)
        return number(n);
    out[0] = (char)('0' + st.class_);
    out[1] = '/';
    out[2] = (char)('0' + (st.flags & CRETO_STAT_RETAINED));
    return creto_quota_exceeded((creto_str){out, 3}, (int64_t)st.size, st.expires, st.created);
}

static int64_t timestamp(void)
{
    static uint8_t buf[CRETO_TIMESTAMP_MAX];
    creto_timestamp ts;
    int32_t n = creto_consensus_timestamp(buf, &ts);
    if (n < 0)
        return number(n);
    return creto_quota_exceeded(ts.node_id, (int64_t)ts.logical, ts.consensus, ts.physical);
}

int64_t creto_evaluate(uint32_t n)
{
    const creto_request *req = creto_request_parse(n);
    if (!req)
        return creto_error(CRETO_STR("platform: malformed request"));
    creto_str a = creto_action_id(req), p = creto_principal_id(req), r = creto_resource_id(req);
#define IS(lit) creto_str_eq(a, CRETO_STR(lit))
    if (IS("is_registered"))
        return number(creto_nhi_is_registered(p));
    if (IS("is_revoked"))
        return number(creto_nhi_is_revoked(p));
    if (IS("status"))
        return number(creto_nhi_status(p));
    if (IS("owner"))
        return fetch(owner, p, r, false);
    if (IS("agent_type"))
        return fetch(agent_type, p, r, false);
    if (IS("attribute"))
        return fetch(attribute, p, r, false);
    if (IS("mac"))
        return mac(p, r);
    if (IS("reveal"))
        return fetch(reveal, p, r, true);
    if (IS("emit"))
        return number(creto_audit_emit(r, p, CRETO_STR("checked"), CRETO_AUDIT_DENIED, CRETO_STR("{\"via\":\"platform\"}")));
    if (IS("put")) {
        creto_str ctx = creto_context(req);
        return number(creto_storage_put(BUCKET, r, (const uint8_t *)ctx.ptr, ctx.len, CRETO_CLASS_ARTIFACT, 3600));
    }
    if (IS("get"))
        return fetch(get, p, r, true);
    if (IS("stat"))
        return stat(r);
    if (IS("delete"))
        return number(creto_storage_delete(BUCKET, r));
    if (IS("timestamp"))
        return timestamp();
#undef IS
    return creto_continue();
}
