//! The Rust SDK's conformance guest. `examples/wasm/conformance_test.go`
//! drives it twice: directly, through the probe exports below, to hold the
//! readers and builders to `abi/testdata/golden` byte for byte; and through
//! the engine, to check the host-function bindings against the real host
//! modules.
#![no_std]

use creto::{json, kind, state, Answer, Io, Level};

creto::extension!(evaluate: evaluate, init: init);

// The golden decisions, numbered by kind like decision-*.json.
fn golden(io: &mut Io, k: u32) -> Answer {
    match k {
        kind::ALLOW => io.allow(),
        kind::DENY => io.deny(
            b"no-deletes-after-hours",
            b"deletes are allowed 08:00-18:00 only",
        ),
        kind::REQUIRES_OVERSIGHT => io.requires_oversight(
            b"large-transfer",
            b"two-person",
            1_800_000_000_000,
            &[b"cfo", b"controller"],
        ),
        kind::QUOTA_EXCEEDED => io.quota_exceeded(
            b"llm-tokens/daily",
            100_000,
            100_001,
            1_764_201_600_000_000_000,
        ),
        kind::RATE_LIMITED => io.rate_limited(250_000_000, 0),
        _ => io.error(b"conformance: no such golden decision"),
    }
}

fn io() -> Io {
    // Each export below runs alone, like the ones extension! generates.
    unsafe { Io::take() }
}

#[no_mangle]
pub extern "C" fn golden_decision(k: u32) -> u64 {
    golden(&mut io(), k).0
}

#[no_mangle]
pub extern "C" fn golden_error() -> u64 {
    io().error(b"conformance: refused").0
}

fn view(s: &[u8]) -> i64 {
    ((s.as_ptr() as u64) << 32 | s.len() as u64) as i64
}

/// One field of the request in arena[0:n]: a string as (address << 32) |
/// length, or a number; -1 when the request is malformed or the field
/// unknown. Fields 0-8 are the strings in header order, 9 the flags, 10
/// the outcome, 11 the delegation length, 16 + 2i and 17 + 2i link i.
#[no_mangle]
pub extern "C" fn probe(n: u32, field: u32) -> i64 {
    let io = io();
    let r = match io.request(n) {
        Some(r) => r,
        None => return -1,
    };
    match field {
        0 => view(r.principal_type()),
        1 => view(r.principal_id()),
        2 => view(r.action_type()),
        3 => view(r.action_id()),
        4 => view(r.resource_type()),
        5 => view(r.resource_id()),
        6 => view(r.context()),
        7 => view(r.attributes()),
        8 => view(r.trace_id()),
        9 => r.flags() as i64,
        10 => r.outcome() as i64,
        11 => r.delegation_len() as i64,
        _ if field >= 16 => match r.delegation((field - 16) / 2) {
            Some((t, id)) => view(if field % 2 == 1 { id } else { t }),
            None => -1,
        },
        _ => -1,
    }
}

/// Looks up the key in arena[json_len:json_len+key_len] in the JSON at
/// arena[0:json_len]. Mode 0 returns the raw value's view, 1 the integer
/// (i64::MIN when it is not one), 2 the string contents' view; -1 when
/// missing.
#[no_mangle]
pub extern "C" fn json_probe(json_len: u32, key_len: u32, mode: u32) -> i64 {
    let io = io();
    let all = io.config(json_len + key_len);
    let (obj, key) = all.split_at(json_len as usize);
    match (json::get(obj, key), mode) {
        (None, _) => -1,
        (Some(v), 1) => json::int(v).unwrap_or(i64::MIN),
        (Some(v), 2) => json::string(v).map_or(-1, view),
        (Some(v), _) => view(v),
    }
}

fn init(io: &mut Io, n: u32) -> Answer {
    if io.config(n) == b"refuse" {
        return io.error(b"conformance: refused");
    }
    Answer::READY
}

/// Calls every host function once and reports what they returned in a
/// quota decision: id the context, limit the counter, used the length of
/// the attributes, reset the clock.
fn hostcalls(io: &mut Io) -> Answer {
    static mut BUFFERS: [[u8; 1024]; 3] = [[0; 1024]; 3];
    // The engine calls one export at a time, so nothing else holds these.
    let [context, attributes, readback] = unsafe { &mut *core::ptr::addr_of_mut!(BUFFERS) };

    creto::log(Level::Info, b"conformance: hostcalls");
    let ctx = creto::request_context(context);
    let attrs = creto::request_principal_attributes(attributes);
    if ctx < 0 || ctx as usize > context.len() || attrs < 0 || attrs as usize > attributes.len() {
        return io.error(b"conformance: creto:request/v1 failed");
    }
    let (context, attributes) = (&context[..ctx as usize], &attributes[..attrs as usize]);
    if state::set(b"attrs", attributes) != 0
        || state::get(b"attrs", readback) != attrs
        || &readback[..attrs as usize] != attributes
    {
        return io.error(b"conformance: creto:state/v1 get/set failed");
    }
    if state::get(b"missing", readback) != creto::errno::ENOTFOUND {
        return io.error(b"conformance: creto:state/v1 found a missing key");
    }
    let calls = state::add(b"calls", 1, 0);
    io.quota_exceeded(context, calls, attrs as i64, creto::time::now())
}

fn evaluate(io: &mut Io, n: u32) -> Answer {
    let action = match io.request(n) {
        Some(r) => r.action_id(),
        None => return io.error(b"conformance: malformed request"),
    };
    let k = match action {
        b"hostcalls" => return hostcalls(io),
        b"golden-allow" => kind::ALLOW,
        b"golden-deny" => kind::DENY,
        b"golden-oversight" => kind::REQUIRES_OVERSIGHT,
        b"golden-quota" => kind::QUOTA_EXCEEDED,
        b"golden-ratelimit" => kind::RATE_LIMITED,
        _ => return Answer::CONTINUE,
    };
    golden(io, k)
}
