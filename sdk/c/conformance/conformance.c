/*
 * The C SDK's conformance guest. examples/wasm/conformance_test.go drives it
 * twice: directly, through the probe exports below, to hold the readers and
 * builders to abi/testdata/golden byte for byte; and through the engine, to
 * check the host-function bindings against the real host modules.
 */
#include "../creto.h"

/* The golden decisions, numbered by kind like decision-*.json. */
static int64_t golden(uint32_t kind)
{
    static const creto_str approvers[] = {CRETO_STR("cfo"), CRETO_STR("controller")};
    switch (kind) {
    case CRETO_ALLOW:
        return creto_allow();
    case CRETO_DENY:
        return creto_deny(CRETO_STR("no-deletes-after-hours"), CRETO_STR("deletes are allowed 08:00-18:00 only"));
    case CRETO_REQUIRES_OVERSIGHT:
        return creto_requires_oversight(CRETO_STR("large-transfer"), CRETO_STR("two-person"), 1800000000000,
                                        approvers, 2);
    case CRETO_QUOTA_EXCEEDED:
        return creto_quota_exceeded(CRETO_STR("llm-tokens/daily"), 100000, 100001, 1764201600000000000);
    case CRETO_RATE_LIMITED:
        return creto_rate_limited(250000000, 0);
    }
    return creto_error(CRETO_STR("conformance: no such golden decision"));
}

CRETO_EXPORT("golden_decision") int64_t golden_decision(uint32_t kind) { return golden(kind); }

CRETO_EXPORT("golden_error") int64_t golden_error(void) { return creto_error(CRETO_STR("conformance: refused")); }

static int64_t view(creto_str s) { return (int64_t)((uint64_t)(uintptr_t)s.ptr << 32 | s.len); }

/* One field of the request in arena[0:n]: a string as (address << 32) |
 * length, or a number; -1 when the request is malformed or the field
 * unknown. Fields 0-8 are the strings in header order, 9 the flags, 10 the
 * outcome, 11 the delegation length, 16 + 2i and 17 + 2i link i. */
CRETO_EXPORT("probe") int64_t probe(uint32_t n, uint32_t field)
{
    const creto_request *r = creto_request_parse(n);
    if (!r)
        return -1;
    switch (field) {
    case 0:
        return view(creto_principal_type(r));
    case 1:
        return view(creto_principal_id(r));
    case 2:
        return view(creto_action_type(r));
    case 3:
        return view(creto_action_id(r));
    case 4:
        return view(creto_resource_type(r));
    case 5:
        return view(creto_resource_id(r));
    case 6:
        return view(creto_context(r));
    case 7:
        return view(creto_attributes(r));
    case 8:
        return view(creto_trace_id(r));
    case 9:
        return creto_flags(r);
    case 10:
        return creto_outcome(r);
    case 11:
        return creto_delegation_len(r);
    }
    if (field >= 16 && (field - 16) / 2 < creto_delegation_len(r))
        return view(field % 2 ? creto_delegation_id(r, (field - 16) / 2) : creto_delegation_type(r, (field - 16) / 2));
    return -1;
}

/* Looks up the key in arena[json_len:json_len+key_len] in the JSON at
 * arena[0:json_len]. Mode 0 returns the raw value's view, 1 the integer
 * (INT64_MIN when it is not one), 2 the string contents' view; -1 when
 * missing. */
CRETO_EXPORT("json_probe") int64_t json_probe(uint32_t json_len, uint32_t key_len, uint32_t mode)
{
    creto_str json = {(const char *)creto_arena, json_len};
    creto_str key = {(const char *)creto_arena + json_len, key_len};
    creto_str v = creto_json_get(json, key), s;
    int64_t i;
    if (!v.ptr)
        return -1;
    switch (mode) {
    case 1:
        return creto_json_int(v, &i) ? i : INT64_MIN;
    case 2:
        return creto_json_string(v, &s) ? view(s) : -1;
    }
    return view(v);
}

CRETO_EXPORT("creto_init") int64_t creto_init(uint32_t n)
{
    if (creto_str_eq(creto_config(n), CRETO_STR("refuse")))
        return creto_error(CRETO_STR("conformance: refused"));
    return creto_ready();
}

static char context[1024], attributes[1024], readback[1024];

/* Calls every host function once and reports what they returned in a
 * quota decision: id the context, limit the counter, used the length of
 * the attributes, reset the clock. */
static int64_t hostcalls(void)
{
    creto_log(CRETO_LOG_INFO, CRETO_STR("conformance: hostcalls"));
    int32_t ctx = creto_request_context(context, sizeof context);
    int32_t attrs = creto_request_principal_attributes(attributes, sizeof attributes);
    if (ctx < 0 || ctx > (int32_t)sizeof context || attrs < 0 || attrs > (int32_t)sizeof attributes)
        return creto_error(CRETO_STR("conformance: creto:request/v1 failed"));
    if (creto_state_set("attrs", 5, attributes, (uint32_t)attrs) != 0 ||
        creto_state_get("attrs", 5, readback, sizeof readback) != attrs ||
        !creto_str_eq((creto_str){readback, (uint32_t)attrs}, (creto_str){attributes, (uint32_t)attrs}))
        return creto_error(CRETO_STR("conformance: creto:state/v1 get/set failed"));
    if (creto_state_get("missing", 7, readback, sizeof readback) != CRETO_ENOTFOUND)
        return creto_error(CRETO_STR("conformance: creto:state/v1 found a missing key"));
    int64_t calls = creto_state_add("calls", 5, 1, 0);
    creto_str got = {context, (uint32_t)ctx};
    return creto_quota_exceeded(got, calls, attrs, creto_time_now());
}

int64_t creto_evaluate(uint32_t n)
{
    const creto_request *r = creto_request_parse(n);
    if (!r)
        return creto_error(CRETO_STR("conformance: malformed request"));
    creto_str action = creto_action_id(r);
    if (creto_str_eq(action, CRETO_STR("hostcalls")))
        return hostcalls();
    if (creto_str_eq(action, CRETO_STR("golden-allow")))
        return golden(CRETO_ALLOW);
    if (creto_str_eq(action, CRETO_STR("golden-deny")))
        return golden(CRETO_DENY);
    if (creto_str_eq(action, CRETO_STR("golden-oversight")))
        return golden(CRETO_REQUIRES_OVERSIGHT);
    if (creto_str_eq(action, CRETO_STR("golden-quota")))
        return golden(CRETO_QUOTA_EXCEEDED);
    if (creto_str_eq(action, CRETO_STR("golden-ratelimit")))
        return golden(CRETO_RATE_LIMITED);
    return creto_continue();
}
