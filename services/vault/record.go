package vault

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// The records the vault stores. Every one except the seal record is
// encrypted under the root key with its store key as associated data
// (barrier.go), so these encodings are what a decryption yields. The
// decoders still validate every field: they are the fuzz targets, and a
// record must never decode into something the vault would not have
// written.

const recordVersion = 1

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
	var e encoder
	e.u8(recordVersion)
	e.str(m.ref.Path)
	e.str(m.ref.Name)
	e.str(m.owner)
	e.u8(uint8(m.meta.Type))
	e.str(m.meta.Description)
	e.u16(uint16(len(m.meta.Labels)))
	for _, k := range slices.Sorted(maps.Keys(m.meta.Labels)) {
		e.str(k)
		e.str(m.meta.Labels[k])
	}
	e.i64(int64(m.meta.Rotation.Interval))
	e.u32(m.current)
	e.i64(m.created)
	e.i64(m.updated)
	e.u16(uint16(len(m.versions)))
	for _, v := range m.versions {
		e.u32(v.version)
		e.i64(v.created)
		e.str(v.createdBy)
		e.i64(v.expires)
		e.i64(v.deleted)
		e.str(v.deletedBy)
		e.bool(v.destroyed)
	}
	return e.b
}

func decodeMeta(b []byte) (*metaRecord, error) {
	d := decoder{b: b}
	if v := d.u8(); v != recordVersion {
		d.fail("record version %d", v)
	}
	m := &metaRecord{}
	m.ref.Path = d.str()
	m.ref.Name = d.str()
	m.owner = d.str()
	m.meta.Type = SecretType(d.u8())
	m.meta.Description = d.str()
	if n := int(d.u16()); n > 0 {
		m.meta.Labels = make(map[string]string, n)
		prev := ""
		for i := range n {
			k, v := d.str(), d.str()
			if i > 0 && k <= prev {
				d.fail("labels not sorted and unique")
			}
			prev = k
			m.meta.Labels[k] = v
		}
	}
	m.meta.Rotation.Interval = time.Duration(d.i64())
	m.current = d.u32()
	m.created = d.i64()
	m.updated = d.i64()
	n := int(d.u16())
	for range n {
		if d.err != nil {
			break
		}
		v := versionRecord{version: d.u32(), created: d.i64(), createdBy: d.str(), expires: d.i64(), deleted: d.i64(), deletedBy: d.str(), destroyed: d.bool()}
		if k := len(m.versions); k > 0 && v.version <= m.versions[k-1].version {
			d.fail("versions not ascending")
		}
		m.versions = append(m.versions, v)
	}
	switch {
	case d.err != nil:
	case m.ref.validate() != nil:
		d.fail("invalid reference")
	case validateID("owner", m.owner) != nil:
		d.fail("invalid owner")
	case !m.meta.Type.valid():
		d.fail("secret type %d", m.meta.Type)
	case m.meta.Rotation.Interval < 0:
		d.fail("negative rotation interval")
	case len(m.versions) == 0 || m.versions[len(m.versions)-1].version != m.current || m.versions[0].version == 0:
		d.fail("version list does not end at the current version")
	}
	if err := d.finish(); err != nil {
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
	var e encoder
	e.u8(recordVersion)
	e.raw(r.id[:])
	e.str(r.delegator)
	e.str(r.delegatee)
	e.u16(uint16(len(r.refs)))
	for _, ref := range r.refs {
		e.str(ref.Path)
		e.str(ref.Name)
	}
	e.i64(r.created)
	e.i64(r.expires)
	e.str(r.restrictions.BoundSandbox)
	e.bool(r.restrictions.SingleUse)
	e.bool(r.restrictions.MemoryOnly)
	e.u32(uint32(r.restrictions.MaxUses))
	e.u32(r.uses)
	e.i64(r.revoked)
	return e.b
}

func decodeDelegation(b []byte) (*delegationRecord, error) {
	d := decoder{b: b}
	if v := d.u8(); v != recordVersion {
		d.fail("record version %d", v)
	}
	r := &delegationRecord{}
	copy(r.id[:], d.take(len(r.id)))
	r.delegator = d.str()
	r.delegatee = d.str()
	n := int(d.u16())
	for range n {
		if d.err != nil {
			break
		}
		r.refs = append(r.refs, SecretRef{Path: d.str(), Name: d.str()})
	}
	r.created = d.i64()
	r.expires = d.i64()
	r.restrictions.BoundSandbox = d.str()
	r.restrictions.SingleUse = d.bool()
	r.restrictions.MemoryOnly = d.bool()
	r.restrictions.MaxUses = int32(d.u32())
	r.uses = d.u32()
	r.revoked = d.i64()
	switch {
	case d.err != nil:
	case validateID("delegator", r.delegator) != nil || validateID("delegatee", r.delegatee) != nil:
		d.fail("invalid agent id")
	case len(r.refs) == 0 || !refsValid(r.refs):
		d.fail("invalid references")
	case r.expires <= r.created:
		d.fail("expires before it is created")
	case r.restrictions.MaxUses < 0 || (r.restrictions.SingleUse && r.restrictions.MaxUses != 1):
		d.fail("invalid use limit")
	case r.restrictions.BoundSandbox != "" && validateID("sandbox", r.restrictions.BoundSandbox) != nil:
		d.fail("invalid sandbox id")
	}
	if err := d.finish(); err != nil {
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
	var e encoder
	e.u8(recordVersion)
	e.i64(ev.Time.UnixNano())
	e.str(ev.Agent)
	e.u8(uint8(ev.Operation))
	e.str(ev.Ref.Path)
	e.str(ev.Ref.Name)
	e.u32(ev.Version)
	e.str(ev.DelegationID)
	e.str(ev.SandboxID)
	e.u8(uint8(ev.Outcome))
	e.str(ev.Reason)
	return e.b
}

func decodeEvent(b []byte) (*AccessEvent, error) {
	d := decoder{b: b}
	if v := d.u8(); v != recordVersion {
		d.fail("record version %d", v)
	}
	ev := &AccessEvent{}
	ev.Time = time.Unix(0, d.i64()).UTC()
	ev.Agent = d.str()
	ev.Operation = Operation(d.u8())
	ev.Ref.Path = d.str()
	ev.Ref.Name = d.str()
	ev.Version = d.u32()
	ev.DelegationID = d.str()
	ev.SandboxID = d.str()
	ev.Outcome = Outcome(d.u8())
	ev.Reason = d.str()
	switch {
	case d.err != nil:
	case !ev.Operation.valid():
		d.fail("operation %d", ev.Operation)
	case !ev.Outcome.valid():
		d.fail("outcome %d", ev.Outcome)
	case strings.ContainsRune(ev.Agent+ev.Ref.Path+ev.Ref.Name, 0):
		d.fail("NUL in an id")
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	return ev, nil
}
