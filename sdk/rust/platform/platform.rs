//! The Rust SDK's platform guest: `examples/wasm/platform_test.go` drives
//! it, like every SDK's, through the engine against the real host modules.
//! Each action calls one binding on the request's principal id (`p`) and
//! resource id (`r`) and reports what it got as a quota decision: id the
//! text, limit the number (a negative errno on an error), used and reset
//! two more numbers. Byte results are read with a small buffer first, so
//! the return convention's retry is exercised on every long one.
#![no_std]

use creto::{audit, consensus, nhi, storage, vault, Answer, Io};

creto::extension!(evaluate: evaluate);

const BUCKET: &[u8] = b"platform";
const SECRET: &[u8] = b"SIGNING";

// Copies of the request's fields (the answer overwrites the arena), and
// the buffers results are read into. The engine calls one export at a
// time, so nothing else holds them.
static mut P: [u8; 256] = [0; 256];
static mut R: [u8; 256] = [0; 256];
static mut CTX: [u8; 8192] = [0; 8192];
static mut OUT: [u8; 8192] = [0; 8192];

fn copy<'b>(dst: &'b mut [u8], src: &[u8]) -> Option<&'b [u8]> {
    let d = dst.get_mut(..src.len())?;
    d.copy_from_slice(src);
    Some(d)
}

/// Reads a byte result into `out` by the return convention: a 16-byte
/// buffer first, then one of the length the host reported.
fn fetch<'b>(out: &'b mut [u8], mut get: impl FnMut(&mut [u8]) -> i32) -> Result<&'b [u8], i32> {
    let mut cap = 16;
    loop {
        let buf = out.get_mut(..cap).ok_or(creto::errno::EINVAL)?;
        let n = get(buf);
        if n < 0 {
            return Err(n);
        }
        if n as usize <= cap {
            return out.get(..n as usize).ok_or(creto::errno::EINVAL);
        }
        cap = n as usize;
    }
}

fn report(io: &mut Io, r: Result<&[u8], i32>, n: i64) -> Answer {
    match r {
        Ok(text) => io.quota_exceeded(text, n, 0, 0),
        Err(code) => io.quota_exceeded(b"", code as i64, 0, 0),
    }
}

fn number(io: &mut Io, n: i32) -> Answer {
    io.quota_exceeded(b"", n as i64, 0, 0)
}

fn hex(mac: &[u8; vault::MAC_SIZE], out: &mut [u8]) -> Option<usize> {
    const DIGITS: &[u8] = b"0123456789abcdef";
    for (i, b) in mac.iter().enumerate() {
        *out.get_mut(2 * i)? = *DIGITS.get((b >> 4) as usize)?;
        *out.get_mut(2 * i + 1)? = *DIGITS.get((b & 15) as usize)?;
    }
    Some(2 * mac.len())
}

fn evaluate(io: &mut Io, n: u32) -> Answer {
    let (pb, rb, cb, out) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(P),
            &mut *core::ptr::addr_of_mut!(R),
            &mut *core::ptr::addr_of_mut!(CTX),
            &mut *core::ptr::addr_of_mut!(OUT),
        )
    };
    let (p, r, ctx, action) = match io.request(n) {
        Some(req) => {
            let action: &[u8] = match req.action_id() {
                a @ (b"is_registered" | b"is_revoked" | b"status" | b"owner" | b"agent_type"
                | b"attribute" | b"mac" | b"reveal" | b"emit" | b"put" | b"get" | b"stat"
                | b"delete" | b"timestamp") => a,
                _ => return Answer::CONTINUE,
            };
            match (
                copy(pb, req.principal_id()),
                copy(rb, req.resource_id()),
                copy(cb, req.context()),
            ) {
                (Some(p), Some(r), Some(c)) => (p, r, c, action),
                _ => return io.error(b"platform: request too large"),
            }
        }
        None => return io.error(b"platform: malformed request"),
    };
    match action {
        b"is_registered" => number(io, nhi::is_registered(p)),
        b"is_revoked" => number(io, nhi::is_revoked(p)),
        b"status" => number(io, nhi::status(p)),
        b"owner" => report(io, fetch(out, |b| nhi::owner(p, b)), 0),
        b"agent_type" => report(io, fetch(out, |b| nhi::agent_type(p, b)), 0),
        b"attribute" => report(io, fetch(out, |b| nhi::attribute(p, r, b)), 0),
        b"mac" => {
            let mut mac = [0u8; vault::MAC_SIZE];
            let n = vault::mac(r, SECRET, p, &mut mac);
            match hex(&mac, out) {
                Some(len) if n >= 0 => {
                    io.quota_exceeded(out.get(..len).unwrap_or(b""), n as i64, 0, 0)
                }
                _ => number(io, n),
            }
        }
        b"reveal" => match fetch(out, |b| vault::reveal(r, SECRET, b)) {
            Ok(v) => io.quota_exceeded(v, v.len() as i64, 0, 0),
            Err(code) => number(io, code),
        },
        b"emit" => number(
            io,
            audit::emit(r, p, b"checked", audit::DENIED, br#"{"via":"platform"}"#),
        ),
        b"put" => number(io, storage::put(BUCKET, r, ctx, storage::ARTIFACT, 3600)),
        b"get" => match fetch(out, |b| storage::get(BUCKET, r, b)) {
            Ok(v) => io.quota_exceeded(v, v.len() as i64, 0, 0),
            Err(code) => number(io, code),
        },
        b"stat" => match storage::stat(BUCKET, r) {
            Ok(s) => {
                let text = [b'0' + s.class as u8, b'/', b'0' + s.retained() as u8];
                io.quota_exceeded(&text, s.size as i64, s.expires, s.created)
            }
            Err(code) => number(io, code),
        },
        b"delete" => number(io, storage::delete(BUCKET, r)),
        b"timestamp" => {
            let mut rec = [0u8; consensus::MAX_RECORD];
            match consensus::timestamp(&mut rec) {
                Ok(ts) => io.quota_exceeded(
                    ts.node_id,
                    ts.logical as i64,
                    ts.consensus as i64,
                    ts.physical,
                ),
                Err(code) => number(io, code),
            }
        }
        _ => Answer::CONTINUE,
    }
}
