// Package abi is the wire format of Creto's extension ABI v1 (SPEC.md):
// the request the engine writes into a guest's I/O arena and the decision
// a guest writes back. The same code encodes on the host and decodes in Go
// guests, and golden vectors in testdata/golden hold every other SDK to it.
//
// The package has no dependencies beyond the standard library so it builds
// for GOOS=wasip1 guests.
package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Magic numbers and layout constants (SPEC.md §4).
const (
	RequestMagic       uint32 = 0x31515243 // "CRQ1"
	DecisionMagic      uint32 = 0x31434443 // "CDC1"
	RequestHeaderSize         = 96
	DecisionHeaderSize        = 56
	// Minor is the ABI minor version this package writes into requests.
	Minor = 0
)

// Request flags.
const (
	FlagContextOmitted    uint16 = 1 << 0
	FlagAttributesOmitted uint16 = 1 << 1
)

// Decision kinds, matching the engine's.
const (
	KindAllow             uint32 = 1
	KindDeny              uint32 = 2
	KindRequiresOversight uint32 = 3
	KindQuotaExceeded     uint32 = 4
	KindRateLimited       uint32 = 5
)

// Result statuses of creto_evaluate and creto_init.
const (
	StatusContinue uint32 = 0
	StatusDecision uint32 = 1
	StatusError    uint32 = 2
)

// Limits the decoders enforce on what a guest returns.
const (
	MaxDecisionString = 4096
	MaxApprovers      = 32
)

// ErrMalformed is returned for any record that is not a well-formed
// request or decision.
var ErrMalformed = errors.New("abi: malformed record")

// Ref names an entity: a Cedar type and an id.
type Ref struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Request is what an extension is asked about.
type Request struct {
	Principal  Ref    `json:"principal"`
	Action     Ref    `json:"action"`
	Resource   Ref    `json:"resource"`
	Context    []byte `json:"context"`    // JSON object
	Attributes []byte `json:"attributes"` // principal attributes, JSON object
	TraceID    string `json:"trace_id"`
	Delegation []Ref  `json:"delegation"`
	// Outcome is Cedar's decision so far: KindAllow or KindRequiresOversight.
	Outcome uint32 `json:"outcome"`
	Flags   uint16 `json:"flags"`
}

// Decision is what an extension answers when it does not let a request
// continue. Its fields mean different things per kind (SPEC.md §4.2).
type Decision struct {
	Kind      uint32   `json:"kind"`
	ID        string   `json:"id"`
	Text      string   `json:"text"`
	A         int64    `json:"a"`
	B         int64    `json:"b"`
	C         int64    `json:"c"`
	Approvers []string `json:"approvers"`
}

// RequestSize is the encoded size of r.
func RequestSize(r *Request) int {
	n := RequestHeaderSize + len(r.Principal.Type) + len(r.Principal.ID) + len(r.Action.Type) + len(r.Action.ID) +
		len(r.Resource.Type) + len(r.Resource.ID) + len(r.Context) + len(r.Attributes) + len(r.TraceID) +
		16*len(r.Delegation)
	for _, d := range r.Delegation {
		n += len(d.Type) + len(d.ID)
	}
	return n
}

// AppendRequest appends the encoding of r to dst. The string area is laid
// out in field order (the canonical layout the golden vectors use); it
// allocates nothing when dst has room.
func AppendRequest(dst []byte, r *Request) []byte {
	base := len(dst)
	dst = append(dst, make([]byte, RequestHeaderSize)...)
	h := dst[base:]
	le.PutUint32(h[0:], RequestMagic)
	le.PutUint16(h[4:], Minor)
	le.PutUint16(h[6:], r.Flags)
	var at int
	put := func(slot int, s string) {
		le.PutUint32(dst[base+slot:], uint32(len(dst)-base))
		le.PutUint32(dst[base+slot+4:], uint32(len(s)))
		dst = append(dst, s...)
	}
	putBytes := func(slot int, s []byte) {
		le.PutUint32(dst[base+slot:], uint32(len(dst)-base))
		le.PutUint32(dst[base+slot+4:], uint32(len(s)))
		dst = append(dst, s...)
	}
	put(8, r.Principal.Type)
	put(16, r.Principal.ID)
	put(24, r.Action.Type)
	put(32, r.Action.ID)
	put(40, r.Resource.Type)
	put(48, r.Resource.ID)
	putBytes(56, r.Context)
	putBytes(64, r.Attributes)
	put(72, r.TraceID)
	le.PutUint32(dst[base+80:], uint32(len(r.Delegation)))
	at = len(dst) - base
	le.PutUint32(dst[base+84:], uint32(at))
	le.PutUint32(dst[base+88:], r.Outcome)
	dst = append(dst, make([]byte, 16*len(r.Delegation))...)
	for i, d := range r.Delegation {
		put(at+16*i, d.Type)
		put(at+16*i+8, d.ID)
	}
	return dst
}

// DecodeRequest decodes a request, copying its strings.
func DecodeRequest(b []byte) (Request, error) {
	v, err := ParseRequest(b)
	if err != nil {
		return Request{}, err
	}
	r := Request{
		Principal:  Ref{string(v.field(8)), string(v.field(16))},
		Action:     Ref{string(v.field(24)), string(v.field(32))},
		Resource:   Ref{string(v.field(40)), string(v.field(48))},
		Context:    append([]byte(nil), v.field(56)...),
		Attributes: append([]byte(nil), v.field(64)...),
		TraceID:    string(v.field(72)),
		Outcome:    le.Uint32(v[88:]),
		Flags:      le.Uint16(v[6:]),
	}
	for i := range v.DelegationLen() {
		t, id := v.Delegation(i)
		r.Delegation = append(r.Delegation, Ref{string(t), string(id)})
	}
	return r, nil
}

// RequestView reads a request in place, without copying: what guests use.
// ParseRequest has checked every offset, so its accessors cannot fail.
type RequestView []byte

// ParseRequest checks b's header and every string's bounds.
func ParseRequest(b []byte) (RequestView, error) {
	if len(b) < RequestHeaderSize || le.Uint32(b) != RequestMagic {
		return nil, fmt.Errorf("%w: not a CRQ1 request", ErrMalformed)
	}
	v := RequestView(b)
	for slot := 8; slot <= 72; slot += 8 {
		if _, ok := str(b, slot); !ok {
			return nil, fmt.Errorf("%w: request field at %d out of range", ErrMalformed, slot)
		}
	}
	n, at := int(le.Uint32(b[80:])), int(le.Uint32(b[84:]))
	if n < 0 || at < 0 || n > (len(b)-at)/16 || at > len(b) {
		return nil, fmt.Errorf("%w: delegation table out of range", ErrMalformed)
	}
	for i := range 2 * n {
		if _, ok := str(b, at+8*i); !ok {
			return nil, fmt.Errorf("%w: delegation entry %d out of range", ErrMalformed, i/2)
		}
	}
	return v, nil
}

func (v RequestView) field(slot int) []byte { s, _ := str(v, slot); return s }

// PrincipalType and the methods below return views into the request.
func (v RequestView) PrincipalType() []byte { return v.field(8) }

// PrincipalID is the principal's id.
func (v RequestView) PrincipalID() []byte { return v.field(16) }

// ActionType is the action's entity type (usually "Action").
func (v RequestView) ActionType() []byte { return v.field(24) }

// ActionID is the action's id.
func (v RequestView) ActionID() []byte { return v.field(32) }

// ResourceType is the resource's entity type.
func (v RequestView) ResourceType() []byte { return v.field(40) }

// ResourceID is the resource's id.
func (v RequestView) ResourceID() []byte { return v.field(48) }

// Context is the request context as a JSON object.
func (v RequestView) Context() []byte { return v.field(56) }

// Attributes are the principal's request attributes as a JSON object.
func (v RequestView) Attributes() []byte { return v.field(64) }

// TraceID is the caller's trace id.
func (v RequestView) TraceID() []byte { return v.field(72) }

// Flags reports what was omitted from the request.
func (v RequestView) Flags() uint16 { return le.Uint16(v[6:]) }

// Outcome is Cedar's decision so far.
func (v RequestView) Outcome() uint32 { return le.Uint32(v[88:]) }

// DelegationLen is the length of the delegation chain.
func (v RequestView) DelegationLen() int { return int(le.Uint32(v[80:])) }

// Delegation returns link i of the chain (0 is the origin).
func (v RequestView) Delegation(i int) (typ, id []byte) {
	at := int(le.Uint32(v[84:])) + 16*i
	return v.field(at), v.field(at + 8)
}

// AppendDecision appends the encoding of d to dst.
func AppendDecision(dst []byte, d *Decision) []byte {
	base := len(dst)
	dst = append(dst, make([]byte, DecisionHeaderSize)...)
	le.PutUint32(dst[base:], DecisionMagic)
	le.PutUint32(dst[base+4:], d.Kind)
	put := func(slot int, s string) {
		le.PutUint32(dst[base+slot:], uint32(len(dst)-base))
		le.PutUint32(dst[base+slot+4:], uint32(len(s)))
		dst = append(dst, s...)
	}
	put(8, d.ID)
	put(16, d.Text)
	le.PutUint64(dst[base+24:], uint64(d.A))
	le.PutUint64(dst[base+32:], uint64(d.B))
	le.PutUint64(dst[base+40:], uint64(d.C))
	le.PutUint32(dst[base+48:], uint32(len(d.Approvers)))
	at := len(dst) - base
	le.PutUint32(dst[base+52:], uint32(at))
	dst = append(dst, make([]byte, 8*len(d.Approvers))...)
	for i, a := range d.Approvers {
		put(at+8*i, a)
	}
	return dst
}

// DecodeDecision decodes what a guest returned, refusing anything out of
// bounds, an unknown kind, or strings past the caps; it copies strings out
// of b, which is guest memory.
func DecodeDecision(b []byte) (Decision, error) {
	if len(b) < DecisionHeaderSize || le.Uint32(b) != DecisionMagic {
		return Decision{}, fmt.Errorf("%w: not a CDC1 decision", ErrMalformed)
	}
	d := Decision{
		Kind: le.Uint32(b[4:]),
		A:    int64(le.Uint64(b[24:])),
		B:    int64(le.Uint64(b[32:])),
		C:    int64(le.Uint64(b[40:])),
	}
	if d.Kind < KindAllow || d.Kind > KindRateLimited {
		return Decision{}, fmt.Errorf("%w: unknown decision kind %d", ErrMalformed, d.Kind)
	}
	var err error
	if d.ID, err = capped(b, 8); err != nil {
		return Decision{}, err
	}
	if d.Text, err = capped(b, 16); err != nil {
		return Decision{}, err
	}
	n, at := le.Uint32(b[48:]), int(le.Uint32(b[52:]))
	if n > MaxApprovers {
		return Decision{}, fmt.Errorf("%w: %d approvers, the limit is %d", ErrMalformed, n, MaxApprovers)
	}
	for i := range int(n) {
		a, err := capped(b, at+8*i)
		if err != nil {
			return Decision{}, err
		}
		d.Approvers = append(d.Approvers, a)
	}
	return d, nil
}

func capped(b []byte, slot int) (string, error) {
	s, ok := str(b, slot)
	if !ok {
		return "", fmt.Errorf("%w: decision field at %d out of range", ErrMalformed, slot)
	}
	if len(s) > MaxDecisionString {
		return "", fmt.Errorf("%w: a decision string of %d bytes, the limit is %d", ErrMalformed, len(s), MaxDecisionString)
	}
	return string(s), nil
}

// str reads the (offset, length) pair at slot and returns the bytes it
// names, or false when the pair or the bytes fall outside b.
func str(b []byte, slot int) ([]byte, bool) {
	if slot < 0 || slot+8 > len(b) {
		return nil, false
	}
	off, n := uint64(le.Uint32(b[slot:])), uint64(le.Uint32(b[slot+4:]))
	if off+n > uint64(len(b)) {
		return nil, false
	}
	return b[off : off+n], true
}

// Result packs a status and a length the way creto_evaluate returns them.
func Result(status uint32, length int) uint64 { return uint64(status)<<32 | uint64(uint32(length)) }

// SplitResult is the inverse of Result.
func SplitResult(r uint64) (status uint32, length int) { return uint32(r >> 32), int(uint32(r)) }

var le = binary.LittleEndian

// Host-function error codes (SPEC.md §6): a host function returns the
// result length when non-negative, or one of these.
const (
	EDenied      = -1
	ENotFound    = -2
	EDeadline    = -3
	EInvalid     = -4
	EUnavailable = -5
)

// Host module names (SPEC.md §6).
const (
	ModuleLog       = "creto:log/v1"
	ModuleRequest   = "creto:request/v1"
	ModulePrefilter = "creto:prefilter/v1"
)

// HostModuleName is the import module name of a capability's functions.
func HostModuleName(capability string) string { return "creto:" + capability + "/v1" }

// Exports a module provides (SPEC.md §3).
const (
	ExportMarker   = "creto_abi_1"
	ExportIO       = "creto_io"
	ExportEvaluate = "creto_evaluate"
	ExportInit     = "creto_init"
	ExportMemory   = "memory"
)
