package nhi

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/creto-systems/creto/entity"
	"github.com/creto-systems/creto/internal/wire"
	"github.com/creto-systems/creto/services/crypto"
)

// Delegation format, version 1: one signed link of a chain.
//
//	offset  size  field
//	0       1     format version (1)
//	1       2     signature algorithm id, big-endian (0x0203, ed25519+ml-dsa-65)
//	3       16    delegation id (random)
//	19      1     flags: bit 0 set when the link has a parent; other bits zero
//	20      16    parent delegation id (all zero without a parent)
//	36      1     depth: 1 for a root link, parent's depth + 1 below it
//	37      4     delegator's key version, big-endian
//	41      8     created at, unix milliseconds, big-endian
//	49      8     expires at, unix milliseconds, big-endian
//	57      1+n   delegator agent id (length-prefixed, 1..128 bytes)
//	        1+m   delegatee agent id
//	        1     permission count k (1..32)
//	        k×    permissions, each length-prefixed (1..128 bytes), strictly
//	              ascending: sorted, no duplicates
//	        3377  signature by the delegator's key over everything before it,
//	              context "creto-nhi-delegation/v1"
//
// A chain travels as: version (1), link count (1..32), then each link
// prefixed by its length (2 bytes, big-endian). Links name their parent by
// id, and keys by version: a 10-link chain is about 36 KB, where embedding
// public keys would add 20 KB more.
const (
	delegationVersion = 1
	chainVersion      = 1
	flagHasParent     = 1
)

// Permission limits: a link's permission count and each permission's
// length fit one-byte length prefixes, and keep a link small.
const (
	MaxPermissions      = 32
	MaxPermissionLength = 128
)

// DelegationID identifies one link.
type DelegationID [16]byte

// String returns the id in hex, the form ParseDelegationID reads.
func (id DelegationID) String() string { return hex.EncodeToString(id[:]) }

// ParseDelegationID reads the hex form String writes.
func ParseDelegationID(s string) (DelegationID, error) {
	var id DelegationID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("nhi: parse delegation id: %w", detail(ErrInvalidArgument, "want %d hex digits", 2*len(id)))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("nhi: parse delegation id: %w", detail(ErrInvalidArgument, "not hex"))
	}
	return id, nil
}

// Delegation is one signed link: delegator hands delegatee a subset of
// what it holds, until an expiry. It is immutable, and always exactly what
// its signed encoding says; read it through its methods.
type Delegation struct {
	id, parent           DelegationID
	hasParent            bool
	depth                int
	keyVersion           uint32
	createdAt, expiresAt int64
	delegator, delegatee string
	permissions          []string
	enc                  []byte // body ‖ signature
}

// ID returns the link's id.
func (d *Delegation) ID() DelegationID { return d.id }

// Parent returns the id of the link this one narrows, and false for a
// root link.
func (d *Delegation) Parent() (DelegationID, bool) { return d.parent, d.hasParent }

// Depth is the link's position in its chain, 1 for a root link.
func (d *Delegation) Depth() int { return d.depth }

// Delegator is the agent that granted the link and signed it.
func (d *Delegation) Delegator() string { return d.delegator }

// Delegatee is the agent that received it.
func (d *Delegation) Delegatee() string { return d.delegatee }

// KeyVersion is the delegator's key version that signed the link.
func (d *Delegation) KeyVersion() uint32 { return d.keyVersion }

// Permissions returns the granted permissions, sorted.
func (d *Delegation) Permissions() []string { return slices.Clone(d.permissions) }

// CreatedAt returns when the link was made.
func (d *Delegation) CreatedAt() time.Time { return time.UnixMilli(d.createdAt).UTC() }

// ExpiresAt returns when the link stops being valid.
func (d *Delegation) ExpiresAt() time.Time { return time.UnixMilli(d.expiresAt).UTC() }

// Encode returns the signed encoding, which DecodeDelegation reads.
func (d *Delegation) Encode() []byte { return bytes.Clone(d.enc) }

func (d *Delegation) body() []byte      { return d.enc[:len(d.enc)-signatureSize] }
func (d *Delegation) signature() []byte { return d.enc[len(d.enc)-signatureSize:] }

func (d *Delegation) appendBody(b []byte) []byte {
	e := wire.Encoder(b)
	e.U8(delegationVersion)
	e.U16(uint16(signingAlgorithm))
	e.Raw(d.id[:])
	var flags uint8
	if d.hasParent {
		flags = flagHasParent
	}
	e.U8(flags)
	e.Raw(d.parent[:])
	e.U8(uint8(d.depth))
	e.U32(d.keyVersion)
	e.I64(d.createdAt)
	e.I64(d.expiresAt)
	e.Str8(d.delegator)
	e.Str8(d.delegatee)
	e.U8(uint8(len(d.permissions)))
	for _, p := range d.permissions {
		e.Str8(p)
	}
	return e
}

// DecodeDelegation decodes one link and checks its structure; it does not
// verify the signature (VerifyChain does). Failures match
// ErrDelegationMalformed.
func DecodeDelegation(b []byte) (*Delegation, error) {
	d, err := decodeDelegation(b)
	if err != nil {
		return nil, fmt.Errorf("nhi: decode delegation: %w: %w", ErrDelegationMalformed, err)
	}
	return d, nil
}

func decodeDelegation(b []byte) (*Delegation, error) {
	var d Delegation
	r := wire.NewDecoder(b)
	if v := r.U8(); v != delegationVersion {
		r.Fail("version %d", v)
	}
	if alg := crypto.Algorithm(r.U16()); alg != signingAlgorithm {
		r.Fail("signature algorithm %v", alg)
	}
	copy(d.id[:], r.Take(len(d.id)))
	flags := r.U8()
	copy(d.parent[:], r.Take(len(d.parent)))
	d.hasParent = flags == flagHasParent
	switch {
	case r.Err() != nil:
	case flags&^flagHasParent != 0:
		r.Fail("unknown flags %#x", flags)
	case !d.hasParent && d.parent != DelegationID{}:
		r.Fail("parent id without the parent flag")
	}
	d.depth = int(r.U8())
	if d.depth < 1 || d.depth > MaxChainLinks || (d.depth == 1) == d.hasParent {
		r.Fail("depth %d with parent flag %v", d.depth, d.hasParent)
	}
	d.keyVersion = r.U32()
	d.createdAt = r.I64()
	d.expiresAt = r.I64()
	d.delegator = r.Str8(MaxIDLength)
	d.delegatee = r.Str8(MaxIDLength)
	n := int(r.U8())
	if n < 1 || n > MaxPermissions {
		r.Fail("%d permissions, want 1..%d", n, MaxPermissions)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		d.permissions = append(d.permissions, r.Str8(MaxPermissionLength))
	}
	r.Take(signatureSize)
	if err := r.Finish(); err != nil {
		return nil, err
	}
	if d.expiresAt <= d.createdAt {
		return nil, errors.New("expires before it is created")
	}
	for _, id := range []string{d.delegator, d.delegatee} {
		if err := validateID("agent id", id); err != nil {
			return nil, err
		}
	}
	for i, p := range d.permissions {
		if err := validatePermission(p); err != nil {
			return nil, err
		}
		if i > 0 && d.permissions[i-1] >= p {
			return nil, errors.New("permissions not strictly ascending")
		}
	}
	d.enc = bytes.Clone(b)
	return &d, nil
}

func validatePermission(p string) error {
	if p == "" || len(p) > MaxPermissionLength || !utf8.ValidString(p) {
		return detail(ErrInvalidArgument, "a permission must be valid UTF-8 of 1 to %d bytes", MaxPermissionLength)
	}
	for _, r := range p {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return detail(ErrInvalidArgument, "permission %s contains a space or control character", quote(p))
		}
	}
	return nil
}

// normalizePermissions sorts and deduplicates, so the set has one encoding.
func normalizePermissions(perms []string) ([]string, error) {
	out := slices.Clone(perms)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) < 1 || len(out) > MaxPermissions {
		return nil, detail(ErrInvalidArgument, "%d permissions, want 1..%d", len(out), MaxPermissions)
	}
	for _, p := range out {
		if err := validatePermission(p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// subset reports whether every element of sub, a sorted set, is in sup,
// another sorted set.
func subset(sub, sup []string) bool {
	j := 0
	for _, p := range sub {
		for j < len(sup) && sup[j] < p {
			j++
		}
		if j == len(sup) || sup[j] != p {
			return false
		}
	}
	return true
}

// DelegationChain is a chain of links, root first. A chain from
// VerifyDelegation or VerifyChain is verified: only such a chain yields
// entity references for a policy check.
type DelegationChain struct {
	links      []*Delegation
	verified   bool
	entityType string
}

// Links returns the links, root first.
func (c *DelegationChain) Links() []*Delegation { return slices.Clone(c.links) }

// Root is the agent that started the chain: the root link's delegator.
func (c *DelegationChain) Root() string {
	if len(c.links) == 0 {
		return ""
	}
	return c.links[0].delegator
}

// Principal is the agent the chain empowers: the last link's delegatee.
func (c *DelegationChain) Principal() string {
	if len(c.links) == 0 {
		return ""
	}
	return c.links[len(c.links)-1].delegatee
}

// Permissions are what the principal holds through the chain: the last
// link's, which are a subset of every link's above it.
func (c *DelegationChain) Permissions() []string {
	if len(c.links) == 0 {
		return nil
	}
	return c.links[len(c.links)-1].Permissions()
}

// ValidUntil is when the chain stops verifying at the latest: the earliest
// expiry of its links.
func (c *DelegationChain) ValidUntil() time.Time {
	if len(c.links) == 0 {
		return time.Time{}
	}
	end := c.links[0].expiresAt
	for _, l := range c.links[1:] {
		end = min(end, l.expiresAt)
	}
	return time.UnixMilli(end).UTC()
}

// Verified reports whether the service verified this chain.
func (c *DelegationChain) Verified() bool { return c.verified }

// EntityRefs returns the chain as engine.Request.Delegation expects it:
// every delegator, the root first and the principal's immediate delegator
// last, so a policy sees the root as context.delegation.origin. It refuses
// a chain that was not verified. A verified chain stays valid only until
// ValidUntil, or until something on it is revoked: verify per request (or
// per short-lived connection), not once.
func (c *DelegationChain) EntityRefs() ([]entity.Ref, error) {
	if !c.verified {
		return nil, fmt.Errorf("nhi: entity refs: %w", ErrNotVerified)
	}
	refs := make([]entity.Ref, len(c.links))
	for i, l := range c.links {
		refs[i] = entity.Ref{Type: c.entityType, ID: l.delegator}
	}
	return refs, nil
}

// Encode returns the chain's wire form, which DecodeDelegationChain reads.
func (c *DelegationChain) Encode() []byte {
	var e wire.Encoder
	e.U8(chainVersion)
	e.U8(uint8(len(c.links)))
	for _, l := range c.links {
		e.Bytes16(l.enc)
	}
	return e
}

// DecodeDelegationChain decodes a chain's wire form. The result is not
// verified; pass it to VerifyChain. Failures match ErrDelegationMalformed.
func DecodeDelegationChain(b []byte) (*DelegationChain, error) {
	fail := func(err error) (*DelegationChain, error) {
		return nil, fmt.Errorf("nhi: decode delegation chain: %w: %w", ErrDelegationMalformed, err)
	}
	r := wire.NewDecoder(b)
	if v := r.U8(); v != chainVersion {
		r.Fail("version %d", v)
	}
	n := int(r.U8())
	if n < 1 || n > MaxChainLinks {
		r.Fail("%d links, want 1..%d", n, MaxChainLinks)
	}
	c := &DelegationChain{}
	for i := 0; i < n && r.Err() == nil; i++ {
		raw := r.Bytes16(math.MaxUint16)
		if r.Err() != nil {
			break
		}
		d, err := decodeDelegation(raw)
		if err != nil {
			return fail(fmt.Errorf("link %d: %w", i+1, err))
		}
		c.links = append(c.links, d)
	}
	if err := r.Finish(); err != nil {
		return fail(err)
	}
	return c, nil
}
