//! Bindings of the platform's host modules (SPEC.md 6.6-6.11): `nhi`,
//! `vault` (with `vault-reveal`), `audit`, `storage` and `consensus`.
//!
//! Like [`state`](crate::state), the functions that return bytes take the
//! caller's buffer and follow the ABI's return convention: the full length
//! of the result, with nothing written when that exceeds the buffer (call
//! again with one at least that long), or a negative
//! [`errno`](crate::errno). The crate has no allocator, so the retry is
//! the caller's; records the SPEC defines come back typed.

mod host {
    #[link(wasm_import_module = "creto:nhi/v1")]
    extern "C" {
        pub fn is_registered(id: *const u8, id_len: u32) -> i32;
        pub fn is_revoked(id: *const u8, id_len: u32) -> i32;
        pub fn status(id: *const u8, id_len: u32) -> i32;
        pub fn owner(id: *const u8, id_len: u32, out: *mut u8, cap: u32) -> i32;
        pub fn agent_type(id: *const u8, id_len: u32, out: *mut u8, cap: u32) -> i32;
        pub fn attribute(
            id: *const u8,
            id_len: u32,
            key: *const u8,
            key_len: u32,
            out: *mut u8,
            cap: u32,
        ) -> i32;
    }

    #[link(wasm_import_module = "creto:vault/v1")]
    extern "C" {
        pub fn mac(
            path: *const u8,
            path_len: u32,
            name: *const u8,
            name_len: u32,
            data: *const u8,
            data_len: u32,
            out: *mut u8,
            cap: u32,
        ) -> i32;
    }

    #[link(wasm_import_module = "creto:vault-reveal/v1")]
    extern "C" {
        pub fn reveal(
            path: *const u8,
            path_len: u32,
            name: *const u8,
            name_len: u32,
            out: *mut u8,
            cap: u32,
        ) -> i32;
    }

    #[link(wasm_import_module = "creto:audit/v1")]
    extern "C" {
        pub fn emit(
            what: *const u8,
            what_len: u32,
            resource: *const u8,
            resource_len: u32,
            why: *const u8,
            why_len: u32,
            outcome: u32,
            ctx: *const u8,
            ctx_len: u32,
        ) -> i32;
    }

    #[link(wasm_import_module = "creto:storage/v1")]
    extern "C" {
        pub fn put(
            bucket: *const u8,
            bucket_len: u32,
            key: *const u8,
            key_len: u32,
            data: *const u8,
            data_len: u32,
            class: u32,
            ttl_s: i64,
        ) -> i32;
        #[link_name = "get"]
        pub fn storage_get(
            bucket: *const u8,
            bucket_len: u32,
            key: *const u8,
            key_len: u32,
            out: *mut u8,
            cap: u32,
        ) -> i32;
        pub fn stat(
            bucket: *const u8,
            bucket_len: u32,
            key: *const u8,
            key_len: u32,
            out: *mut u8,
            cap: u32,
        ) -> i32;
        pub fn delete(bucket: *const u8, bucket_len: u32, key: *const u8, key_len: u32) -> i32;
    }

    #[link(wasm_import_module = "creto:consensus/v1")]
    extern "C" {
        pub fn timestamp(out: *mut u8, cap: u32) -> i32;
    }
}

/// Reads a little-endian field without an index that could panic (which
/// would pull core's formatting machinery into the module).
fn le<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at + N)?.try_into().ok()
}

/// `creto:nhi/v1` (capability `nhi`): read-only facts the identity registry
/// holds about an agent. An id over 128 bytes is `EINVAL`; one the registry
/// does not know `ENOTFOUND` (except for [`is_registered`](nhi::is_registered)).
pub mod nhi {
    use super::host;

    /// Agent statuses, as [`status`] returns them. Only `ACTIVE` may act.
    pub const ACTIVE: i32 = 1;
    pub const SUSPENDED: i32 = 2;
    pub const REVOKED: i32 = 3;
    /// Active, but past its expiry.
    pub const EXPIRED: i32 = 4;

    /// 1 when the id was ever registered (revoked agents included: ids are
    /// never reused), 0 when not.
    pub fn is_registered(id: &[u8]) -> i32 {
        unsafe { host::is_registered(id.as_ptr(), id.len() as u32) }
    }

    /// 1 revoked, 0 not.
    pub fn is_revoked(id: &[u8]) -> i32 {
        unsafe { host::is_revoked(id.as_ptr(), id.len() as u32) }
    }

    /// One of [`ACTIVE`], [`SUSPENDED`], [`REVOKED`], [`EXPIRED`].
    pub fn status(id: &[u8]) -> i32 {
        unsafe { host::status(id.as_ptr(), id.len() as u32) }
    }

    /// The owner's id, by the return convention.
    pub fn owner(id: &[u8], out: &mut [u8]) -> i32 {
        unsafe {
            host::owner(
                id.as_ptr(),
                id.len() as u32,
                out.as_mut_ptr(),
                out.len() as u32,
            )
        }
    }

    /// `autonomous`, `assistant`, `service` or `workflow`, by the return
    /// convention.
    pub fn agent_type(id: &[u8], out: &mut [u8]) -> i32 {
        unsafe {
            host::agent_type(
                id.as_ptr(),
                id.len() as u32,
                out.as_mut_ptr(),
                out.len() as u32,
            )
        }
    }

    /// The value of one of the agent's attributes (a key is at most 64
    /// bytes), by the return convention; `ENOTFOUND` when it has none.
    pub fn attribute(id: &[u8], key: &[u8], out: &mut [u8]) -> i32 {
        unsafe {
            host::attribute(
                id.as_ptr(),
                id.len() as u32,
                key.as_ptr(),
                key.len() as u32,
                out.as_mut_ptr(),
                out.len() as u32,
            )
        }
    }
}

/// `creto:vault/v1` (capability `vault`) and `creto:vault-reveal/v1`
/// (capability `vault-reveal`, granted separately). The extension acts in
/// the vault as `extension:<name>`: `EDENIED` for a secret it may not use,
/// `ENOTFOUND` for one of its own that does not exist.
pub mod vault {
    use super::host;

    /// The length of [`mac`]'s result, an HMAC-SHA256.
    pub const MAC_SIZE: usize = 32;

    /// Writes the HMAC-SHA256 of `data` (at most 1 MiB) keyed by the
    /// secret's current version and returns 32; the key never enters the
    /// sandbox.
    pub fn mac(path: &[u8], name: &[u8], data: &[u8], out: &mut [u8; MAC_SIZE]) -> i32 {
        unsafe {
            host::mac(
                path.as_ptr(),
                path.len() as u32,
                name.as_ptr(),
                name.len() as u32,
                data.as_ptr(),
                data.len() as u32,
                out.as_mut_ptr(),
                MAC_SIZE as u32,
            )
        }
    }

    /// The secret's plaintext, by the return convention (capability
    /// `vault-reveal`). Every read is access-logged, a read into a buffer
    /// too small included.
    pub fn reveal(path: &[u8], name: &[u8], out: &mut [u8]) -> i32 {
        unsafe {
            host::reveal(
                path.as_ptr(),
                path.len() as u32,
                name.as_ptr(),
                name.len() as u32,
                out.as_mut_ptr(),
                out.len() as u32,
            )
        }
    }
}

/// `creto:audit/v1` (capability `audit`): an event for the node's audit
/// log, in the name of the request's principal (the host says who and
/// when; the guest cannot).
pub mod audit {
    use super::host;

    /// Outcomes of an event.
    pub const SUCCESS: u32 = 0;
    pub const FAILURE: u32 = 1;
    pub const DENIED: u32 = 2;
    pub const TIMEOUT: u32 = 3;

    /// Queues the event and returns 0. `what` is required (at most 256
    /// bytes), `resource` (Cedar form by convention) and `why` may be
    /// empty, `context` is empty or a JSON object of at most 16 string
    /// values. `EINVAL`: the log would refuse it; `EUNAVAILABLE`: no log
    /// here, or past the rate (100 a second).
    pub fn emit(what: &[u8], resource: &[u8], why: &[u8], outcome: u32, context: &[u8]) -> i32 {
        unsafe {
            host::emit(
                what.as_ptr(),
                what.len() as u32,
                resource.as_ptr(),
                resource.len() as u32,
                why.as_ptr(),
                why.len() as u32,
                outcome,
                context.as_ptr(),
                context.len() as u32,
            )
        }
    }
}

/// `creto:storage/v1` (capability `storage`): small encrypted objects owned
/// by the extension's identity `extension:<name>`. Another identity's
/// objects are `EDENIED`; no live version is `ENOTFOUND`.
pub mod storage {
    use super::{host, le};

    /// Classifications.
    pub const AGENT_DATA: u32 = 1;
    pub const SANDBOX_STATE: u32 = 2;
    pub const MESSAGE_PAYLOAD: u32 = 3;
    pub const ARTIFACT: u32 = 4;
    pub const SENSITIVE: u32 = 5;
    /// Retained for years, undeletable by anyone.
    pub const COMPLIANCE: u32 = 6;

    /// `ttl_s` of [`put`]: the node's default lifetime (90 days).
    pub const DEFAULT_TTL: i64 = 0;
    /// `ttl_s` of [`put`]: no expiry.
    pub const NO_EXPIRY: i64 = -1;

    /// The length of stat's record.
    pub const STAT_SIZE: usize = 32;

    /// An object's metadata.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Stat {
        pub size: u64,
        /// Unix nanoseconds.
        pub created: i64,
        /// Unix nanoseconds; 0 when it never expires.
        pub expires: i64,
        pub class: u32,
        pub flags: u32,
    }

    impl Stat {
        /// Reads the 32-byte little-endian record.
        pub fn parse(b: &[u8]) -> Option<Stat> {
            if b.len() != STAT_SIZE {
                return None;
            }
            Some(Stat {
                size: u64::from_le_bytes(le(b, 0)?),
                created: i64::from_le_bytes(le(b, 8)?),
                expires: i64::from_le_bytes(le(b, 16)?),
                class: u32::from_le_bytes(le(b, 24)?),
                flags: u32::from_le_bytes(le(b, 28)?),
            })
        }

        /// Whether the object is under compliance retention.
        pub fn retained(&self) -> bool {
            self.flags & 1 != 0
        }
    }

    /// Stores `data` (at most 1 MiB) as a new version and returns 0.
    /// `ttl_s` is the version's lifetime in seconds, [`DEFAULT_TTL`] or
    /// [`NO_EXPIRY`]; every version counts against the quota until then.
    pub fn put(bucket: &[u8], key: &[u8], data: &[u8], class: u32, ttl_s: i64) -> i32 {
        unsafe {
            host::put(
                bucket.as_ptr(),
                bucket.len() as u32,
                key.as_ptr(),
                key.len() as u32,
                data.as_ptr(),
                data.len() as u32,
                class,
                ttl_s,
            )
        }
    }

    /// The latest live version's data, by the return convention.
    pub fn get(bucket: &[u8], key: &[u8], out: &mut [u8]) -> i32 {
        unsafe {
            host::storage_get(
                bucket.as_ptr(),
                bucket.len() as u32,
                key.as_ptr(),
                key.len() as u32,
                out.as_mut_ptr(),
                out.len() as u32,
            )
        }
    }

    /// The latest live version's metadata, or a negative errno.
    pub fn stat(bucket: &[u8], key: &[u8]) -> Result<Stat, i32> {
        let mut rec = [0u8; STAT_SIZE];
        let n = unsafe {
            host::stat(
                bucket.as_ptr(),
                bucket.len() as u32,
                key.as_ptr(),
                key.len() as u32,
                rec.as_mut_ptr(),
                STAT_SIZE as u32,
            )
        };
        if n < 0 {
            return Err(n);
        }
        Stat::parse(rec.get(..n as usize).ok_or(crate::errno::EINVAL)?).ok_or(crate::errno::EINVAL)
    }

    /// Deletes every version and returns 0; all or nothing.
    pub fn delete(bucket: &[u8], key: &[u8]) -> i32 {
        unsafe {
            host::delete(
                bucket.as_ptr(),
                bucket.len() as u32,
                key.as_ptr(),
                key.len() as u32,
            )
        }
    }
}

/// `creto:consensus/v1` (capability `consensus`): timestamps in the
/// cluster's total order, or the node's own, flagged, when the cluster
/// cannot give one. A guest never waits on a lost quorum.
pub mod consensus {
    use super::{host, le};

    /// A buffer this long always holds the record.
    pub const MAX_RECORD: usize = 276;
    const HEADER: usize = 20;

    /// A timestamp; `node_id` borrows the buffer it was read from.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Timestamp<'a> {
        /// Strictly increasing across the cluster's timestamps.
        pub logical: u64,
        /// Unix nanoseconds, at millisecond precision; not unique.
        pub physical: i64,
        /// False for a local timestamp, ordered only with that node's.
        pub consensus: bool,
        pub node_id: &'a [u8],
    }

    impl<'a> Timestamp<'a> {
        /// Reads a record; None when it is not one.
        pub fn parse(b: &'a [u8]) -> Option<Timestamp<'a>> {
            if b.len() > MAX_RECORD {
                return None;
            }
            let flags = u32::from_le_bytes(le(b, 16)?);
            if flags & !1 != 0 {
                return None;
            }
            Some(Timestamp {
                logical: u64::from_le_bytes(le(b, 0)?),
                physical: i64::from_le_bytes(le(b, 8)?),
                consensus: flags & 1 != 0,
                node_id: b.get(HEADER..)?,
            })
        }
    }

    /// Takes a timestamp into `out` ([`MAX_RECORD`] bytes suffice; with
    /// fewer, one that does not fit is dropped and the length returned as
    /// the error), or a negative errno.
    pub fn timestamp(out: &mut [u8]) -> Result<Timestamp<'_>, i32> {
        let n = unsafe { host::timestamp(out.as_mut_ptr(), out.len() as u32) };
        if n < 0 || n as usize > out.len() {
            return Err(n);
        }
        Timestamp::parse(out.get(..n as usize).ok_or(crate::errno::EINVAL)?)
            .ok_or(crate::errno::EINVAL)
    }
}
