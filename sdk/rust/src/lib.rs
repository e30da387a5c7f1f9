//! Write Creto authorization extensions in Rust (ABI v1, `abi/SPEC.md`).
//!
//! A `#![no_std]` crate with no dependencies and no allocator: requests are
//! read in place from the I/O arena and decisions are written in place, so
//! an extension is a few hundred bytes of Wasm. The [`extension!`] macro
//! supplies the ABI exports; the extension supplies the logic:
//!
//! ```ignore
//! #![no_std]
//! use creto::{Answer, Io};
//!
//! creto::extension!(evaluate: evaluate);
//!
//! fn evaluate(io: &mut Io, n: u32) -> Answer {
//!     match io.request(n) {
//!         Some(req) if req.action_id() == b"delete" => io.deny(b"no-delete", b"deletes are blocked"),
//!         Some(_) => Answer::CONTINUE,
//!         None => io.error(b"not a request"),
//!     }
//! }
//! ```
//!
//! Build a `cdylib` for `wasm32-unknown-unknown` with `-C panic=abort`.
//!
//! The arena holds the request and then the answer, which overwrites it.
//! [`Request`] and the configuration borrow the [`Io`] they come from while
//! the builders need it mutably, so the borrow checker refuses a decision
//! that would copy from the request it is overwriting: copy such bytes into
//! a buffer of your own first.
#![no_std]

use core::cell::UnsafeCell;

/// Size of the I/O arena; the engine needs at least 4 KiB. Requests that
/// do not fit lose their context and attributes, which stay available
/// through [`request_context`] and [`request_principal_attributes`].
pub const ARENA_SIZE: usize = 65536;

#[repr(C, align(8))]
struct Arena(UnsafeCell<[u8; ARENA_SIZE]>);

// Wasm guests are single-threaded and the engine calls one export at a
// time; `Io` is the only way to reach the arena.
unsafe impl Sync for Arena {}

// A zeroed static: no data segment, never moves, as the engine requires.
static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_SIZE]));

/// Decision kinds (SPEC.md 4.2).
pub mod kind {
    pub const ALLOW: u32 = 1;
    pub const DENY: u32 = 2;
    pub const REQUIRES_OVERSIGHT: u32 = 3;
    pub const QUOTA_EXCEEDED: u32 = 4;
    pub const RATE_LIMITED: u32 = 5;
}

/// Request flags: what did not fit the arena (SPEC.md 4.1).
pub const FLAG_CONTEXT_OMITTED: u16 = 1;
pub const FLAG_ATTRIBUTES_OMITTED: u16 = 2;

/// Host-function error codes (SPEC.md 6).
pub mod errno {
    pub const EDENIED: i32 = -1;
    pub const ENOTFOUND: i32 = -2;
    pub const EDEADLINE: i32 = -3;
    pub const EINVAL: i32 = -4;
    pub const EUNAVAILABLE: i32 = -5;
}

/// What `creto_evaluate` and `creto_init` return: `(status << 32) | length`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a builder wrote the answer into the arena; return it"]
pub struct Answer(pub u64);

impl Answer {
    /// No opinion: the next extension, or Cedar's decision, stands.
    pub const CONTINUE: Answer = Answer(0);
    /// `creto_init`'s answer when the configuration is acceptable.
    pub const READY: Answer = Answer(0);

    const DECISION: u64 = 1;
    const ERROR: u64 = 2;

    fn new(status: u64, len: usize) -> Answer {
        Answer(status << 32 | len as u64)
    }
}

/// The arena, handed to the extension's functions by [`extension!`].
pub struct Io {
    _private: (),
}

#[doc(hidden)]
pub fn io_location() -> u64 {
    (ARENA.0.get() as usize as u64) << 32 | ARENA_SIZE as u64
}

impl Io {
    /// For [`extension!`] only.
    ///
    /// # Safety
    /// At most one `Io` may exist at a time.
    #[doc(hidden)]
    pub unsafe fn take() -> Io {
        Io { _private: () }
    }

    fn bytes(&self) -> &[u8; ARENA_SIZE] {
        unsafe { &*ARENA.0.get() }
    }

    fn ptr(&mut self) -> *mut u8 {
        ARENA.0.get() as *mut u8
    }

    /// The request in `arena[0:n]`, or `None` when it is not one.
    pub fn request(&self, n: u32) -> Option<Request<'_>> {
        Request::parse(self.bytes().get(..n as usize)?)
    }

    /// The configuration `creto_init` receives in `arena[0:n]`.
    pub fn config(&self, n: u32) -> &[u8] {
        let b = self.bytes();
        b.get(..n as usize).unwrap_or(b)
    }

    /// The encoder behind every builder: the fields mean different things
    /// per kind (SPEC.md 4.2) but the layout is the same.
    pub fn decide(&mut self, d: &Decision) -> Answer {
        let mut size = DECISION_HEADER
            + d.id.len() as u64
            + d.text.len() as u64
            + 8 * d.approvers.len() as u64;
        for a in d.approvers {
            size += a.len() as u64;
        }
        if size > ARENA_SIZE as u64 {
            return self.error(b"creto: the decision does not fit the arena");
        }
        // Raw writes, with every offset below `size`: bounds-checked ones
        // would bring panic paths into a module that is otherwise tiny.
        let p = self.ptr();
        unsafe {
            put(p, 0, &DECISION_MAGIC.to_le_bytes());
            put(p, 4, &d.kind.to_le_bytes());
            let mut at = DECISION_HEADER as usize;
            at = put_str(p, 8, at, d.id);
            at = put_str(p, 16, at, d.text);
            put(p, 24, &d.a.to_le_bytes());
            put(p, 32, &d.b.to_le_bytes());
            put(p, 40, &d.c.to_le_bytes());
            put(p, 48, &(d.approvers.len() as u32).to_le_bytes());
            put(p, 52, &(at as u32).to_le_bytes());
            let table = at;
            at += 8 * d.approvers.len();
            for (i, a) in d.approvers.iter().enumerate() {
                at = put_str(p, table + 8 * i, at, a);
            }
            Answer::new(Answer::DECISION, at)
        }
    }

    /// Allow outright, skipping the extensions after this one.
    pub fn allow(&mut self) -> Answer {
        self.decide(&Decision {
            kind: kind::ALLOW,
            ..Decision::EMPTY
        })
    }

    /// Deny; an empty policy id is reported as `ext:<name>`.
    pub fn deny(&mut self, policy_id: &[u8], reason: &[u8]) -> Answer {
        self.decide(&Decision {
            kind: kind::DENY,
            id: policy_id,
            text: reason,
            ..Decision::EMPTY
        })
    }

    /// Hold the request for human approval; a timeout of 0 takes the
    /// engine's default.
    pub fn requires_oversight(
        &mut self,
        policy_id: &[u8],
        requirement: &[u8],
        timeout_ns: i64,
        approvers: &[&[u8]],
    ) -> Answer {
        self.decide(&Decision {
            kind: kind::REQUIRES_OVERSIGHT,
            id: policy_id,
            text: requirement,
            a: timeout_ns,
            approvers,
            ..Decision::EMPTY
        })
    }

    /// `reset_at_ns` is Unix time in nanoseconds, 0 when unknown.
    pub fn quota_exceeded(
        &mut self,
        quota_id: &[u8],
        limit: i64,
        used: i64,
        reset_at_ns: i64,
    ) -> Answer {
        self.decide(&Decision {
            kind: kind::QUOTA_EXCEEDED,
            id: quota_id,
            a: limit,
            b: used,
            c: reset_at_ns,
            ..Decision::EMPTY
        })
    }

    pub fn rate_limited(&mut self, retry_after_ns: i64, remaining: i64) -> Answer {
        self.decide(&Decision {
            kind: kind::RATE_LIMITED,
            a: retry_after_ns,
            b: remaining,
            ..Decision::EMPTY
        })
    }

    /// A failure, handled by the extension's `on_error`; from `creto_init`
    /// it refuses the configuration and the registration fails.
    pub fn error(&mut self, message: &[u8]) -> Answer {
        let n = message.len().min(ARENA_SIZE);
        unsafe { core::ptr::copy_nonoverlapping(message.as_ptr(), self.ptr(), n) };
        Answer::new(Answer::ERROR, n)
    }
}

const DECISION_MAGIC: u32 = 0x3143_4443; // "CDC1"
const DECISION_HEADER: u64 = 56;

unsafe fn put(p: *mut u8, at: usize, b: &[u8]) {
    core::ptr::copy_nonoverlapping(b.as_ptr(), p.add(at), b.len());
}

// Writes s at p[at] and its (offset, length) at slot; returns the offset
// after it.
unsafe fn put_str(p: *mut u8, slot: usize, at: usize, s: &[u8]) -> usize {
    put(p, slot, &(at as u32).to_le_bytes());
    put(p, slot + 4, &(s.len() as u32).to_le_bytes());
    put(p, at, s);
    at + s.len()
}

/// A decision record (SPEC.md 4.2). The builders on [`Io`] fill it for
/// each kind; `a`, `b` and `c` mean different things per kind.
#[derive(Clone, Copy, Debug)]
pub struct Decision<'d> {
    pub kind: u32,
    pub id: &'d [u8],
    pub text: &'d [u8],
    pub a: i64,
    pub b: i64,
    pub c: i64,
    pub approvers: &'d [&'d [u8]],
}

impl Decision<'static> {
    pub const EMPTY: Decision<'static> = Decision {
        kind: 0,
        id: b"",
        text: b"",
        a: 0,
        b: 0,
        c: 0,
        approvers: &[],
    };
}

/// A request (SPEC.md 4.1), read in place. Accessors return empty values
/// for out-of-range offsets rather than panic; the engine never writes
/// those.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    b: &'a [u8],
}

const REQUEST_MAGIC: u32 = 0x3151_5243; // "CRQ1"
const REQUEST_HEADER: usize = 96;

fn u32_at(b: &[u8], at: usize) -> u32 {
    match b.get(at..at.saturating_add(4)) {
        Some(&[b0, b1, b2, b3]) => u32::from_le_bytes([b0, b1, b2, b3]),
        _ => 0,
    }
}

impl<'a> Request<'a> {
    /// The request encoded in `b`, or `None` when it is not one.
    pub fn parse(b: &'a [u8]) -> Option<Request<'a>> {
        if b.len() < REQUEST_HEADER || u32_at(b, 0) != REQUEST_MAGIC {
            return None;
        }
        Some(Request { b })
    }

    fn str(&self, slot: usize) -> &'a [u8] {
        let off = u32_at(self.b, slot) as usize;
        let len = u32_at(self.b, slot + 4) as usize;
        self.b.get(off..off.saturating_add(len)).unwrap_or(&[])
    }

    pub fn principal_type(&self) -> &'a [u8] {
        self.str(8)
    }
    pub fn principal_id(&self) -> &'a [u8] {
        self.str(16)
    }
    pub fn action_type(&self) -> &'a [u8] {
        self.str(24)
    }
    pub fn action_id(&self) -> &'a [u8] {
        self.str(32)
    }
    pub fn resource_type(&self) -> &'a [u8] {
        self.str(40)
    }
    pub fn resource_id(&self) -> &'a [u8] {
        self.str(48)
    }
    /// A JSON object; empty when [`FLAG_CONTEXT_OMITTED`] is set.
    pub fn context(&self) -> &'a [u8] {
        self.str(56)
    }
    /// The principal's attributes, a JSON object; empty when
    /// [`FLAG_ATTRIBUTES_OMITTED`] is set.
    pub fn attributes(&self) -> &'a [u8] {
        self.str(64)
    }
    pub fn trace_id(&self) -> &'a [u8] {
        self.str(72)
    }
    pub fn flags(&self) -> u16 {
        (u32_at(self.b, 4) >> 16) as u16
    }
    /// Cedar's decision so far: [`kind::ALLOW`] or [`kind::REQUIRES_OVERSIGHT`].
    pub fn outcome(&self) -> u32 {
        u32_at(self.b, 88)
    }
    /// The length of the delegation chain.
    pub fn delegation_len(&self) -> u32 {
        u32_at(self.b, 80)
    }
    /// Link `i` of the delegation chain as (type, id): link 0 is the origin
    /// (usually a human), the last the immediate delegator.
    pub fn delegation(&self, i: u32) -> Option<(&'a [u8], &'a [u8])> {
        if i >= self.delegation_len() {
            return None;
        }
        let at = (u32_at(self.b, 84) as usize).saturating_add(16 * i as usize);
        Some((self.str(at), self.str(at.saturating_add(8))))
    }
}

/// Declares the ABI exports: the `creto_abi_1` marker, `creto_io`, and
/// `creto_evaluate` (plus `creto_init` when given) calling the extension's
/// functions, which take `(&mut Io, u32) -> Answer`.
#[macro_export]
macro_rules! extension {
    (evaluate: $evaluate:path $(, init: $init:path)? $(,)?) => {
        #[no_mangle]
        pub extern "C" fn creto_abi_1() {}

        #[no_mangle]
        pub extern "C" fn creto_io() -> u64 {
            $crate::io_location()
        }

        #[no_mangle]
        pub extern "C" fn creto_evaluate(n: u32) -> u64 {
            // The engine calls one export at a time: this is the only Io.
            let mut io = unsafe { $crate::Io::take() };
            $evaluate(&mut io, n).0
        }

        $(
            #[no_mangle]
            pub extern "C" fn creto_init(n: u32) -> u64 {
                let mut io = unsafe { $crate::Io::take() };
                $init(&mut io, n).0
            }
        )?
    };
}

#[cfg(all(target_arch = "wasm32", not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // A trap: the engine reports it and applies the extension's on_error.
    core::arch::wasm32::unreachable()
}

// ---- Host functions (SPEC.md 6) -----------------------------------------
//
// A function is imported only when the extension calls it, and the engine
// refuses imports of capabilities the manifest does not request: list
// "time" or "state" in manifest.json before using those.

mod host {
    #[link(wasm_import_module = "creto:log/v1")]
    extern "C" {
        pub fn write(level: i32, ptr: *const u8, len: u32);
    }

    #[link(wasm_import_module = "creto:request/v1")]
    extern "C" {
        pub fn context(out: *mut u8, cap: u32) -> i32;
        pub fn principal_attributes(out: *mut u8, cap: u32) -> i32;
    }

    #[link(wasm_import_module = "creto:time/v1")]
    extern "C" {
        pub fn now() -> i64;
    }

    #[link(wasm_import_module = "creto:state/v1")]
    extern "C" {
        pub fn get(key: *const u8, key_len: u32, out: *mut u8, cap: u32) -> i32;
        pub fn set(key: *const u8, key_len: u32, value: *const u8, value_len: u32) -> i32;
        pub fn add(key: *const u8, key_len: u32, delta: i64, window_ns: i64) -> i64;
    }
}

/// Log levels for [`log`].
#[derive(Clone, Copy, Debug)]
#[repr(i32)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

/// `creto:log/v1 write` (always granted): rate-limited, cut at 1 KiB.
pub fn log(level: Level, message: &[u8]) {
    unsafe { host::write(level as i32, message.as_ptr(), message.len() as u32) }
}

/// `creto:request/v1 context` (always granted), for when the request
/// omitted it: the full length, with nothing written when that exceeds
/// `out.len()`; or a negative [`errno`].
pub fn request_context(out: &mut [u8]) -> i32 {
    unsafe { host::context(out.as_mut_ptr(), out.len() as u32) }
}

/// `creto:request/v1 principal_attributes`; as [`request_context`].
pub fn request_principal_attributes(out: &mut [u8]) -> i32 {
    unsafe { host::principal_attributes(out.as_mut_ptr(), out.len() as u32) }
}

/// `creto:time/v1` (capability `time`).
pub mod time {
    /// Unix time in nanoseconds.
    pub fn now() -> i64 {
        unsafe { super::host::now() }
    }
}

/// `creto:state/v1` (capability `state`): the extension's private store.
/// Keys up to 256 bytes, values up to 64 KiB.
pub mod state {
    use super::host;

    /// The value's length (nothing written when over `out.len()`), or a
    /// negative [`errno`](super::errno), `ENOTFOUND` for a missing key.
    pub fn get(key: &[u8], out: &mut [u8]) -> i32 {
        unsafe {
            host::get(
                key.as_ptr(),
                key.len() as u32,
                out.as_mut_ptr(),
                out.len() as u32,
            )
        }
    }

    /// 0 on success.
    pub fn set(key: &[u8], value: &[u8]) -> i32 {
        unsafe {
            host::set(
                key.as_ptr(),
                key.len() as u32,
                value.as_ptr(),
                value.len() as u32,
            )
        }
    }

    /// Adds `delta` to a counter and returns its new value; with
    /// `window_ns > 0` the counter restarts in every window.
    pub fn add(key: &[u8], delta: i64, window_ns: i64) -> i64 {
        unsafe { host::add(key.as_ptr(), key.len() as u32, delta, window_ns) }
    }
}

mod platform;
pub use platform::{audit, consensus, nhi, storage, vault};

/// Just enough JSON to pick values out of the context, the attributes or a
/// configuration without copying them: a lookup of top-level keys, and
/// readers for integers and strings. Anything malformed reads as missing.
pub mod json {
    // Every access goes through `get`: an index that could panic would pull
    // core's formatting machinery into the module, several kilobytes.

    fn is_space(c: u8) -> bool {
        matches!(c, b' ' | b'\t' | b'\n' | b'\r')
    }

    fn skip_space(s: &[u8], mut i: usize) -> usize {
        while let Some(&c) = s.get(i) {
            if !is_space(c) {
                break;
            }
            i += 1;
        }
        i
    }

    // The index after the string starting at s[i] (a quote), or None when
    // it is not terminated.
    fn string_end(s: &[u8], mut i: usize) -> Option<usize> {
        i += 1;
        loop {
            match *s.get(i)? {
                b'\\' => i += 2,
                b'"' => return Some(i + 1),
                _ => i += 1,
            }
        }
    }

    // The index after the value starting at s[i]: objects and arrays are
    // skipped by counting brackets outside strings.
    fn value_end(s: &[u8], mut i: usize) -> Option<usize> {
        match *s.get(i)? {
            b'"' => string_end(s, i),
            b'{' | b'[' => {
                let mut depth = 0u32;
                loop {
                    match *s.get(i)? {
                        b'"' => {
                            i = string_end(s, i)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(i + 1);
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            _ => {
                let start = i;
                while let Some(&c) = s.get(i) {
                    if is_space(c) || matches!(c, b',' | b'}' | b']') {
                        break;
                    }
                    i += 1;
                }
                if i > start {
                    Some(i)
                } else {
                    None
                }
            }
        }
    }

    /// The raw value of a top-level key of a JSON object. Keys are compared
    /// as written, escapes included.
    pub fn get<'a>(obj: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
        let mut i = skip_space(obj, 0);
        if obj.get(i) != Some(&b'{') {
            return None;
        }
        i = skip_space(obj, i + 1);
        while obj.get(i) == Some(&b'"') {
            let key_end = string_end(obj, i)?;
            let k = obj.get(i + 1..key_end - 1)?;
            i = skip_space(obj, key_end);
            if obj.get(i) != Some(&b':') {
                return None;
            }
            let start = skip_space(obj, i + 1);
            let end = value_end(obj, start)?;
            if k == key {
                return obj.get(start..end);
            }
            i = skip_space(obj, end);
            if obj.get(i) != Some(&b',') {
                return None;
            }
            i = skip_space(obj, i + 1);
        }
        None
    }

    fn skip_digits(v: &[u8], mut i: usize) -> usize {
        while v.get(i).map_or(false, u8::is_ascii_digit) {
            i += 1;
        }
        i
    }

    /// A JSON number as an integer, dropping any fraction (9.99 reads as
    /// 9). Exponents and values past 18 digits are refused rather than
    /// misread.
    pub fn int(v: &[u8]) -> Option<i64> {
        let negative = v.first() == Some(&b'-');
        let start = usize::from(negative);
        let mut i = skip_digits(v, start);
        if i == start || i - start > 18 {
            return None;
        }
        let n = v
            .get(start..i)?
            .iter()
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
        if v.get(i) == Some(&b'.') {
            i = skip_digits(v, i + 1);
        }
        if i != v.len() {
            return None;
        }
        Some(if negative { -n } else { n })
    }

    /// The contents of a JSON string value, between its quotes, escapes
    /// left as written.
    pub fn string(v: &[u8]) -> Option<&[u8]> {
        if v.first() != Some(&b'"') || string_end(v, 0) != Some(v.len()) {
            return None;
        }
        v.get(1..v.len() - 1)
    }
}
