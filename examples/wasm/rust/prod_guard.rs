//! prod-guard: keep agents that act through a long delegation chain away
//! from protected resources.
//!
//! An agent reached through more than `max_depth` delegation links (a user
//! who asked a planner who asked a worker...) has drifted far from the
//! human who is accountable for it; this denies such agents any resource
//! whose id starts with the configured prefix. Configuration:
//! `{"prefix": "prod/", "max_depth": 2}` (`max_depth` defaults to 2). The
//! manifest's prefilter means the engine calls this only for principals of
//! type `Agent`.
#![no_std]

use creto::{json, Answer, Io};

creto::extension!(evaluate: evaluate, init: init);

const MAX_PREFIX: usize = 128;

/// What `init` read from the configuration. The arena is overwritten by
/// every request, so the prefix is copied out of it.
struct Config {
    prefix: [u8; MAX_PREFIX],
    prefix_len: usize,
    max_depth: u32,
}

impl Config {
    fn prefix(&self) -> &[u8] {
        // `get`, not indexing: a possible panic would pull core's
        // formatting code into the module.
        self.prefix.get(..self.prefix_len).unwrap_or(&[])
    }
}

static mut CONFIG: Config = Config {
    prefix: [0; MAX_PREFIX],
    prefix_len: 0,
    max_depth: 2,
};

fn config() -> &'static mut Config {
    // The engine calls one export at a time, so no other reference exists.
    unsafe { &mut *core::ptr::addr_of_mut!(CONFIG) }
}

fn init(io: &mut Io, n: u32) -> Answer {
    let raw = io.config(n);
    let prefix = json::get(raw, b"prefix")
        .and_then(json::string)
        .unwrap_or(b"");
    let max_depth = match json::get(raw, b"max_depth") {
        None => Some(2),
        Some(v) => json::int(v).filter(|d| (0..=64).contains(d)),
    };
    let max_depth = match max_depth {
        Some(d) if !prefix.is_empty() && prefix.len() <= MAX_PREFIX => d as u32,
        _ => {
            return io.error(
                b"prod-guard: want {\"prefix\": \"...\" (1-128 bytes), \"max_depth\": 0-64}",
            )
        }
    };
    let c = config();
    for (dst, src) in c.prefix.iter_mut().zip(prefix) {
        *dst = *src;
    }
    c.prefix_len = prefix.len();
    c.max_depth = max_depth;
    Answer::READY
}

fn evaluate(io: &mut Io, n: u32) -> Answer {
    let c = config();
    let blocked = match io.request(n) {
        Some(req) => {
            req.delegation_len() > c.max_depth && req.resource_id().starts_with(c.prefix())
        }
        None => return io.error(b"prod-guard: malformed request"),
    };
    if blocked {
        io.deny(
            b"prod-guard",
            b"agents acting through a long delegation chain may not touch protected resources",
        )
    } else {
        Answer::CONTINUE
    }
}
