//go:build wasip1

package creto

import (
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/creto-systems/creto/abi"
)

// The platform's host modules (abi/SPEC.md §6.6–§6.11). Each needs its
// capability in the manifest and the operator's grant; like the others,
// a function is imported only when the extension calls it.

//go:wasmimport creto:nhi/v1 is_registered
func hostNHIIsRegistered(idPtr, idLen uint32) int32

//go:wasmimport creto:nhi/v1 is_revoked
func hostNHIIsRevoked(idPtr, idLen uint32) int32

//go:wasmimport creto:nhi/v1 status
func hostNHIStatus(idPtr, idLen uint32) int32

//go:wasmimport creto:nhi/v1 owner
func hostNHIOwner(idPtr, idLen, outPtr, outCap uint32) int32

//go:wasmimport creto:nhi/v1 agent_type
func hostNHIAgentType(idPtr, idLen, outPtr, outCap uint32) int32

//go:wasmimport creto:nhi/v1 attribute
func hostNHIAttribute(idPtr, idLen, keyPtr, keyLen, outPtr, outCap uint32) int32

//go:wasmimport creto:vault/v1 mac
func hostVaultMAC(pathPtr, pathLen, namePtr, nameLen, dataPtr, dataLen, outPtr, outCap uint32) int32

//go:wasmimport creto:vault-reveal/v1 reveal
func hostVaultReveal(pathPtr, pathLen, namePtr, nameLen, outPtr, outCap uint32) int32

//go:wasmimport creto:audit/v1 emit
func hostAuditEmit(whatPtr, whatLen, resPtr, resLen, whyPtr, whyLen, outcome, ctxPtr, ctxLen uint32) int32

//go:wasmimport creto:storage/v1 put
func hostStoragePut(bucketPtr, bucketLen, keyPtr, keyLen, dataPtr, dataLen, class uint32, ttlS int64) int32

//go:wasmimport creto:storage/v1 get
func hostStorageGet(bucketPtr, bucketLen, keyPtr, keyLen, outPtr, outCap uint32) int32

//go:wasmimport creto:storage/v1 stat
func hostStorageStat(bucketPtr, bucketLen, keyPtr, keyLen, outPtr, outCap uint32) int32

//go:wasmimport creto:storage/v1 delete
func hostStorageDelete(bucketPtr, bucketLen, keyPtr, keyLen uint32) int32

//go:wasmimport creto:consensus/v1 timestamp
func hostConsensusTimestamp(outPtr, outCap uint32) int32

// ---- creto:nhi/v1 (capability "nhi") ---------------------------------------

// AgentStatus is an agent's standing in the identity registry.
type AgentStatus int32

// Agent statuses (SPEC.md §6.6). Only AgentActive may act.
const (
	AgentActive    AgentStatus = 1
	AgentSuspended AgentStatus = 2
	AgentRevoked   AgentStatus = 3
	// AgentExpired is an active agent past its expiry.
	AgentExpired AgentStatus = 4
)

// AgentRegistered reports whether the identity registry ever registered
// id; revoked agents count, since ids are never reused.
func AgentRegistered(id string) (bool, error) {
	return flag(hostNHIIsRegistered(ptr(id), uint32(len(id))))
}

// AgentIsRevoked reports whether the agent is revoked (ErrNotFound when the
// registry does not know it).
func AgentIsRevoked(id string) (bool, error) {
	return flag(hostNHIIsRevoked(ptr(id), uint32(len(id))))
}

// AgentStatusOf is the agent's status (ErrNotFound when the registry does
// not know it).
func AgentStatusOf(id string) (AgentStatus, error) {
	n := hostNHIStatus(ptr(id), uint32(len(id)))
	if n < 0 {
		return 0, ErrHost{Code: int64(n)}
	}
	return AgentStatus(n), nil
}

// AgentOwner is the id of the agent's owner.
func AgentOwner(id string) (string, error) {
	b, err := fetch(64, func(out, n uint32) int32 { return hostNHIOwner(ptr(id), uint32(len(id)), out, n) })
	return string(b), err
}

// AgentType is the agent's type: "autonomous", "assistant", "service" or
// "workflow".
func AgentType(id string) (string, error) {
	b, err := fetch(16, func(out, n uint32) int32 { return hostNHIAgentType(ptr(id), uint32(len(id)), out, n) })
	return string(b), err
}

// AgentAttribute is the value of one of the agent's attributes (key at
// most 64 bytes); ErrNotFound when the agent has no such attribute.
func AgentAttribute(id, key string) (string, error) {
	b, err := fetch(64, func(out, n uint32) int32 {
		return hostNHIAttribute(ptr(id), uint32(len(id)), ptr(key), uint32(len(key)), out, n)
	})
	return string(b), err
}

// ---- creto:vault/v1 and creto:vault-reveal/v1 ------------------------------

// MACSize is the length of VaultMAC's result, an HMAC-SHA256.
const MACSize = 32

// VaultMAC is the HMAC-SHA256 of data (at most 1 MiB) keyed by the current
// version of the secret at path/name (capability "vault"); the key never
// enters the sandbox. The extension acts in the vault as
// "extension:<name>": ErrDenied for a secret it may not use, ErrNotFound
// for one of its own that does not exist.
func VaultMAC(path, name string, data []byte) ([MACSize]byte, error) {
	var mac [MACSize]byte
	n := hostVaultMAC(ptr(path), uint32(len(path)), ptr(name), uint32(len(name)),
		bytesPtr(data), uint32(len(data)), bytesPtr(mac[:]), MACSize)
	switch {
	case n < 0:
		return mac, ErrHost{Code: int64(n)}
	case n != MACSize:
		return mac, ErrInvalid
	}
	return mac, nil
}

// VaultReveal is the plaintext of the secret at path/name (capability
// "vault-reveal", granted separately from "vault"). Every read is in the
// secret's access log.
func VaultReveal(path, name string) ([]byte, error) {
	return fetch(256, func(out, n uint32) int32 {
		return hostVaultReveal(ptr(path), uint32(len(path)), ptr(name), uint32(len(name)), out, n)
	})
}

// ---- creto:audit/v1 (capability "audit") -------------------------------------

// Outcome is how an audited event ended.
type Outcome uint32

// Audit outcomes (SPEC.md §6.9).
const (
	OutcomeSuccess Outcome = 0
	OutcomeFailure Outcome = 1
	OutcomeDenied  Outcome = 2
	OutcomeTimeout Outcome = 3
)

// AuditEvent is what an extension reports; the host adds who (the
// request's principal, or the extension itself in init), the source
// "ext:<name>" and the time, none of which a guest can forge.
type AuditEvent struct {
	// What is the event (required, at most 256 bytes).
	What string
	// Resource is what it was about, in Cedar form by convention
	// (`Invoice::"7"`); may be empty.
	Resource string
	// Why is the reason; may be empty.
	Why     string
	Outcome Outcome
	// Context holds at most 16 facts for the record's context.
	Context map[string]string
}

// AuditEmit queues the event for the node's audit log. ErrInvalid means
// the log would refuse it, ErrUnavailable that there is no log here or the
// extension went past its rate (100 a second); nothing is recorded then.
func AuditEmit(e AuditEvent) error {
	var ctx []byte
	if len(e.Context) > 0 {
		var err error
		if ctx, err = json.Marshal(e.Context); err != nil {
			return ErrInvalid
		}
	}
	return check(hostAuditEmit(ptr(e.What), uint32(len(e.What)), ptr(e.Resource), uint32(len(e.Resource)),
		ptr(e.Why), uint32(len(e.Why)), uint32(e.Outcome), bytesPtr(ctx), uint32(len(ctx))))
}

// ---- creto:storage/v1 (capability "storage") ---------------------------------

// Class is an object's classification (seed §5).
type Class uint32

// Classifications (SPEC.md §6.10).
const (
	ClassAgentData      Class = 1
	ClassSandboxState   Class = 2
	ClassMessagePayload Class = 3
	ClassArtifact       Class = 4
	ClassSensitive      Class = 5
	// ClassCompliance objects are retained for years and undeletable by
	// anyone.
	ClassCompliance Class = 6
)

// TTLs of StoragePut besides a positive duration.
const (
	// DefaultTTL is the node's default lifetime (90 days).
	DefaultTTL time.Duration = 0
	// NoExpiry keeps the version until it is deleted.
	NoExpiry time.Duration = -1
)

// ObjectInfo is an object's metadata, as StorageStat reads it.
type ObjectInfo struct {
	Size    uint64
	Created time.Time
	// Expires is the zero time for an object that never expires.
	Expires time.Time
	Class   Class
	// Retained is set for an object under compliance retention.
	Retained bool
}

// statSize is the length of creto:storage/v1 stat's record.
const statSize = 32

// StoragePut stores data (at most 1 MiB) as a new version of bucket/key,
// owned by the extension's identity "extension:<name>". ttl is the
// version's lifetime, rounded up to whole seconds: DefaultTTL, NoExpiry or
// a positive duration. Every version counts against the quota until it
// expires: keep counters in state, not here.
// Any other negative ttl — a deadline already past — is ErrInvalid, never
// "no expiry".
func StoragePut(bucket, key string, data []byte, class Class, ttl time.Duration) error {
	var ttlS int64
	switch {
	case ttl == NoExpiry:
		ttlS = -1
	case ttl < 0:
		return ErrInvalid
	default:
		// Rounded up to whole seconds, without overflowing near the maximum.
		ttlS = int64(ttl/time.Second) + min(1, int64(ttl%time.Second))
	}
	return check(hostStoragePut(ptr(bucket), uint32(len(bucket)), ptr(key), uint32(len(key)),
		bytesPtr(data), uint32(len(data)), uint32(class), ttlS))
}

// StorageGet reads the latest live version of bucket/key.
func StorageGet(bucket, key string) ([]byte, error) {
	return fetch(1024, func(out, n uint32) int32 {
		return hostStorageGet(ptr(bucket), uint32(len(bucket)), ptr(key), uint32(len(key)), out, n)
	})
}

// StorageStat reads the metadata of the latest live version of bucket/key.
func StorageStat(bucket, key string) (ObjectInfo, error) {
	var rec [statSize]byte
	n := hostStorageStat(ptr(bucket), uint32(len(bucket)), ptr(key), uint32(len(key)), bytesPtr(rec[:]), statSize)
	switch {
	case n < 0:
		return ObjectInfo{}, ErrHost{Code: int64(n)}
	case n != statSize:
		return ObjectInfo{}, ErrInvalid
	}
	return parseStat(rec[:]), nil
}

// parseStat reads the 32-byte little-endian record: size u64, created and
// expires i64 Unix nanoseconds (expires 0: never), class u32, flags u32.
func parseStat(b []byte) ObjectInfo {
	le := binary.LittleEndian
	info := ObjectInfo{
		Size:     le.Uint64(b[0:]),
		Created:  time.Unix(0, int64(le.Uint64(b[8:]))),
		Class:    Class(le.Uint32(b[24:])),
		Retained: le.Uint32(b[28:])&1 != 0,
	}
	if exp := int64(le.Uint64(b[16:])); exp != 0 {
		info.Expires = time.Unix(0, exp)
	}
	return info
}

// StorageDelete deletes every version of bucket/key, all or nothing.
func StorageDelete(bucket, key string) error {
	return check(hostStorageDelete(ptr(bucket), uint32(len(bucket)), ptr(key), uint32(len(key))))
}

// ---- creto:consensus/v1 (capability "consensus") -----------------------------

// Timestamp is a timestamp in the cluster's total order (capability
// "consensus"). When the cluster cannot give one the node's own is
// returned with Consensus false, ordered only with that node's; a guest
// never waits on a lost quorum.
func Timestamp() (abi.Timestamp, error) {
	// A record never exceeds the buffer, so the retry (which would drop a
	// timestamp) is only a guard.
	b, err := fetch(abi.MaxTimestampRecord, hostConsensusTimestamp)
	if err != nil {
		return abi.Timestamp{}, err
	}
	ts, err := abi.ParseTimestamp(b)
	if err != nil {
		return abi.Timestamp{}, ErrInvalid
	}
	return ts, nil
}

// flag reads a 0/1 answer.
func flag(n int32) (bool, error) {
	if n < 0 {
		return false, ErrHost{Code: int64(n)}
	}
	return n == 1, nil
}
