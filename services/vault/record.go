package vault

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/creto-systems/creto/internal/wire"
)

// The records the vault stores. Every one except the seal record is
// encrypted under the root key with its store key as associated data
// (barrier.go), so these encodings are what a decryption yields. The
// decoders still validate every field: they are the fuzz targets, and a
// record must never decode into something the vault would not have
// written.

const recordVersion = 1

// noLimit bounds a string field by its 2-byte length prefix alone: each
// decoder checks the values that matter once read, so a record stays
// readable whatever limits its fields had when it was written.
const noLimit = math.MaxUint16

// finish ends a decode: the decoder's first failure, or trailing bytes,
// as ErrCorrupt.
func finish(d *wire.Decoder) error {
	if err := d.Finish(); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return nil
}

// metaRecord is a secret's metadata and version history, stored under
// "vault/m/<path>\x00<name>":
//
//	u8 version | str path | str name | str owner | u8 type | str description |
//	u16 n, n × (str key | str value) sorted by key | i64 rotation interval ns |
//	u32 current version | i64 created ns | i64 updated ns |
//	u16 n, n × version
//
// version: u32 number | i64 created ns | str created by | i64 expires ns (0 never) |
// i64 deleted ns (0 live) | str deleted by | bool destroyed
type metaRecord struct {
	ref      SecretRef
	owner    string
	meta     SecretMetadata
	current  uint32
	created  int64
	updated  int64
	versions []versionRecord // ascending, never empty; the last is current
}

type versionRecord struct {
	version   uint32
	created   int64
	createdBy string
	expires   int64
	deleted   int64
	deletedBy string
	destroyed bool
}

func (m *metaRecord) clone() *metaRecord {
	c := *m
	c.meta = m.meta.clone()
	c.versions = slices.Clone(m.versions)
	return &c
}

// find returns the index of version v, or -1.
func (m *metaRecord) find(v uint32) int {
	i, ok := slices.BinarySearchFunc(m.versions, v, func(r versionRecord, v uint32) int {
		return int(int64(r.version) - int64(v))
	})
	if !ok {
		return -1
	}
	return i
}

func encodeMeta(m *metaRecord) []byte {
	var e wire.Encoder
	e.U8(recordVersion)
	e.Str16(m.ref.Path)
	e.Str16(m.ref.Name)
	e.Str16(m.owner)
	e.U8(uint8(m.meta.Type))
	e.Str16(m.meta.Description)
	e.U16(uint16(len(m.meta.Labels)))
	for _, k := range slices.Sorted(maps.Keys(m.meta.Labels)) {
		e.Str16(k)
		e.Str16(m.meta.Labels[k])
	}
	e.I64(int64(m.meta.Rotation.Interval))
	e.U32(m.current)
	e.I64(m.created)
	e.I64(m.updated)
	e.U16(uint16(len(m.versions)))
	for _, v := range m.versions {
		e.U32(v.version)
		e.I64(v.created)
		e.Str16(v.createdBy)
		e.I64(v.expires)
		e.I64(v.deleted)
		e.Str16(v.deletedBy)
		e.Bool(v.destroyed)
	}
	return e
}

func decodeMeta(b []byte) (*metaRecord, error) {
	d := wire.NewDecoder(b)
	if v := d.U8(); v != recordVersion {
		d.Fail("record version %d", v)
	}
	m := &metaRecord{}
	m.ref.Path = d.Str16(noLimit)
	m.ref.Name = d.Str16(noLimit)
	m.owner = d.Str16(noLimit)
	m.meta.Type = SecretType(d.U8())
	m.meta.Description = d.Str16(noLimit)
	if n := int(d.U16()); n > 0 {
		m.meta.Labels = make(map[string]string, n)
		prev := ""
		for i := range n {
			k, v := d.Str16(noLimit), d.Str16(noLimit)
			if i > 0 && k <= prev {
				d.Fail("labels not sorted and unique")
			}
			prev = k
			m.meta.Labels[k] = v
		}
	}
	m.meta.Rotation.Interval = time.Duration(d.I64())
	m.current = d.U32()
	m.created = d.I64()
	m.updated = d.I64()
	n := int(d.U16())
	for range n {
		if d.Err() != nil {
			break
		}
		v := versionRecord{version: d.U32(), created: d.I64(), createdBy: d.Str16(noLimit), expires: d.I64(), deleted: d.I64(), deletedBy: d.Str16(noLimit), destroyed: d.Bool()}
		if k := len(m.versions); k > 0 && v.version <= m.versions[k-1].version {
			d.Fail("versions not ascending")
		}
		m.versions = append(m.versions, v)
	}
	switch {
	case d.Err() != nil:
	case m.ref.validate() != nil:
		d.Fail("invalid reference")
	case validateID("owner", m.owner) != nil:
		d.Fail("invalid owner")
	case !m.meta.Type.valid():
		d.Fail("secret type %d", m.meta.Type)
	case m.meta.Rotation.Interval < 0:
		d.Fail("negative rotation interval")
	case len(m.versions) == 0 || m.versions[len(m.versions)-1].version != m.current || m.versions[0].version == 0:
		d.Fail("version list does not end at the current version")
	}
	if err := finish(&d); err != nil {
		return nil, err
	}
	return m, nil
}

// info renders the record for callers.
func (m *metaRecord) info() SecretInfo {
	out := SecretInfo{
		Ref:            m.ref,
		Owner:          m.owner,
		Metadata:       m.meta.clone(),
		CurrentVersion: m.current,
		CreatedAt:      unixTime(m.created),
		UpdatedAt:      unixTime(m.updated),
		Versions:       make([]VersionInfo, len(m.versions)),
	}
	for i, v := range m.versions {
		out.Versions[i] = VersionInfo{
			Version: v.version, CreatedAt: unixTime(v.created), CreatedBy: v.createdBy,
			ExpiresAt: unixTime(v.expires), DeletedAt: unixTime(v.deleted), DeletedBy: v.deletedBy,
			Destroyed: v.destroyed,
		}
	}
	return out
}

// unixTime maps 0 to the zero time, so "never" stays zero in responses.
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// delegationRecord is stored under "vault/d/<id>":
//
//	u8 version | 16 bytes id | str delegator | str delegatee |
//	u16 n, n × (str path | str name) | i64 created ns | i64 expires ns |
//	str bound sandbox | bool single use | bool memory only | u32 max uses |
//	u32 uses | i64 revoked ns (0 not revoked)
type delegationRecord struct {
	id                   delegationID
	delegator, delegatee string
	refs                 []SecretRef
	created, expires     int64
	restrictions         DelegationRestrictions
	uses                 uint32
	revoked              int64
}

func encodeDelegation(r *delegationRecord) []byte {
	var e wire.Encoder
	e.U8(recordVersion)
	e.Raw(r.id[:])
	e.Str16(r.delegator)
	e.Str16(r.delegatee)
	e.U16(uint16(len(r.refs)))
	for _, ref := range r.refs {
		e.Str16(ref.Path)
		e.Str16(ref.Name)
	}
	e.I64(r.created)
	e.I64(r.expires)
	e.Str16(r.restrictions.BoundSandbox)
	e.Bool(r.restrictions.SingleUse)
	e.Bool(r.restrictions.MemoryOnly)
	e.U32(uint32(r.restrictions.MaxUses))
	e.U32(r.uses)
	e.I64(r.revoked)
	return e
}

func decodeDelegation(b []byte) (*delegationRecord, error) {
	d := wire.NewDecoder(b)
	if v := d.U8(); v != recordVersion {
		d.Fail("record version %d", v)
	}
	r := &delegationRecord{}
	copy(r.id[:], d.Take(len(r.id)))
	r.delegator = d.Str16(noLimit)
	r.delegatee = d.Str16(noLimit)
	n := int(d.U16())
	for range n {
		if d.Err() != nil {
			break
		}
		r.refs = append(r.refs, SecretRef{Path: d.Str16(noLimit), Name: d.Str16(noLimit)})
	}
	r.created = d.I64()
	r.expires = d.I64()
	r.restrictions.BoundSandbox = d.Str16(noLimit)
	r.restrictions.SingleUse = d.Bool()
	r.restrictions.MemoryOnly = d.Bool()
	r.restrictions.MaxUses = int32(d.U32())
	r.uses = d.U32()
	r.revoked = d.I64()
	switch {
	case d.Err() != nil:
	case validateID("delegator", r.delegator) != nil || validateID("delegatee", r.delegatee) != nil:
		d.Fail("invalid agent id")
	case len(r.refs) == 0 || !refsValid(r.refs):
		d.Fail("invalid references")
	case r.expires <= r.created:
		d.Fail("expires before it is created")
	case r.restrictions.MaxUses < 0 || (r.restrictions.SingleUse && r.restrictions.MaxUses != 1):
		d.Fail("invalid use limit")
	case r.restrictions.BoundSandbox != "" && validateID("sandbox", r.restrictions.BoundSandbox) != nil:
		d.Fail("invalid sandbox id")
	}
	if err := finish(&d); err != nil {
		return nil, err
	}
	return r, nil
}

func refsValid(refs []SecretRef) bool {
	for _, r := range refs {
		if r.validate() != nil {
			return false
		}
	}
	return true
}

// An access event is stored under its log key (accesslog.go):
//
//	u8 version | i64 time ns | str agent | u8 operation | str path | str name |
//	u32 version | str delegation id | str sandbox id | u8 outcome | str reason
func encodeEvent(ev *AccessEvent) []byte {
	var e wire.Encoder
	e.U8(recordVersion)
	e.I64(ev.Time.UnixNano())
	e.Str16(ev.Agent)
	e.U8(uint8(ev.Operation))
	e.Str16(ev.Ref.Path)
	e.Str16(ev.Ref.Name)
	e.U32(ev.Version)
	e.Str16(ev.DelegationID)
	e.Str16(ev.SandboxID)
	e.U8(uint8(ev.Outcome))
	e.Str16(ev.Reason)
	return e
}

func decodeEvent(b []byte) (*AccessEvent, error) {
	d := wire.NewDecoder(b)
	if v := d.U8(); v != recordVersion {
		d.Fail("record version %d", v)
	}
	ev := &AccessEvent{}
	ev.Time = time.Unix(0, d.I64()).UTC()
	ev.Agent = d.Str16(noLimit)
	ev.Operation = Operation(d.U8())
	ev.Ref.Path = d.Str16(noLimit)
	ev.Ref.Name = d.Str16(noLimit)
	ev.Version = d.U32()
	ev.DelegationID = d.Str16(noLimit)
	ev.SandboxID = d.Str16(noLimit)
	ev.Outcome = Outcome(d.U8())
	ev.Reason = d.Str16(noLimit)
	switch {
	case d.Err() != nil:
	case !ev.Operation.valid():
		d.Fail("operation %d", ev.Operation)
	case !ev.Outcome.valid():
		d.Fail("outcome %d", ev.Outcome)
	case strings.ContainsRune(ev.Agent+ev.Ref.Path+ev.Ref.Name, 0):
		d.Fail("NUL in an id")
	}
	if err := finish(&d); err != nil {
		return nil, err
	}
	return ev, nil
}
