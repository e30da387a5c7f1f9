package audit

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/creto-systems/creto/internal/wire"
)

// Outcome is how the audited action ended (seed §9.2). The values are the
// seed's protobuf numbers and the byte the leaf encoding carries.
type Outcome uint8

// Outcomes.
const (
	Success Outcome = 0
	Failure Outcome = 1
	Denied  Outcome = 2
	Timeout Outcome = 3
)

var outcomeNames = [...]string{Success: "success", Failure: "failure", Denied: "denied", Timeout: "timeout"}

// String returns success, failure, denied or timeout.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

func (o Outcome) valid() bool { return int(o) < len(outcomeNames) }

// ParseOutcome is the inverse of Outcome.String.
func ParseOutcome(s string) (Outcome, error) {
	for i, n := range outcomeNames {
		if n == s {
			return Outcome(i), nil
		}
	}
	return 0, detail(ErrInvalidArgument, "outcome %s (want success, failure, denied or timeout)", quote(s))
}

// MarshalText encodes the name.
func (o Outcome) MarshalText() ([]byte, error) {
	if !o.valid() {
		return nil, detail(ErrInvalidArgument, "outcome %d", uint8(o))
	}
	return []byte(o.String()), nil
}

// UnmarshalText decodes the name.
func (o *Outcome) UnmarshalText(b []byte) error {
	v, err := ParseOutcome(string(b))
	if err != nil {
		return err
	}
	*o = v
	return nil
}

// Record is one audit record (seed §9.2 AuditRecord) with what a
// forensic reader needs besides: its position in the log, when the log
// committed it, the emitting component, the deciding policy, a trace id
// and a small context map. Index and LoggedAt are set by the log; the
// rest is the emitter's.
type Record struct {
	// Index is the record's position in the log, from 0. Set by the log.
	Index uint64 `json:"index"`
	// LoggedAt is when the log committed the record. Set by the log.
	LoggedAt time.Time `json:"logged_at"`
	// Timestamp is when the audited action happened; zero means "now"
	// when the record is logged.
	Timestamp time.Time `json:"timestamp"`
	// Source names the emitting component: "authz", "nhi", "vault", "ext:<name>"
	// or, for records logged over the API, whatever the client says.
	Source string `json:"source,omitempty"`
	// Who is the acting identity: the authenticated agent id.
	Who string `json:"who"`
	// DelegationChain lists the identities Who acts for, origin first.
	DelegationChain []string `json:"delegation_chain,omitempty"`
	// What is the action or event: an authorized action's id
	// ("send_email") or a service event ("nhi.agent_registered").
	What string `json:"what"`
	// Resource is what the action was on, in Cedar form (Doc::"q3") for
	// decisions.
	Resource string `json:"resource,omitempty"`
	// Why is the reason: a deny's @reason, an error, a justification.
	Why     string  `json:"why,omitempty"`
	Outcome Outcome `json:"outcome"`
	// PolicyID is the policy that decided, when one did.
	PolicyID string `json:"policy_id,omitempty"`
	// TraceID correlates the record with a distributed trace.
	TraceID string `json:"trace_id,omitempty"`
	// Context holds a few more facts as strings (the decision kind, a
	// token id, a delegation id). Never put secrets in it.
	Context map[string]string `json:"context,omitempty"`
	// Signature is an optional signature by Who over SigningPayload, in
	// the crypto package's encoding (seed HybridSignature).
	Signature []byte `json:"signature,omitempty"`
}

// Format limits of encoding version 1. They bound what any log can hold,
// whatever its configuration; Config.MaxRecordBytes may only lower the
// total. Short identifiers keep index keys well under the store's key
// limit.
const (
	MaxSourceLen         = 64
	MaxIDLen             = 256 // Who, What, PolicyID, TraceID, each chain link
	MaxResourceLen       = 1024
	MaxWhyLen            = 4096
	MaxChainLinks        = 32
	MaxContextEntries    = 64
	MaxContextKeyLen     = 128
	MaxContextValueLen   = 4096
	MaxSignatureLen      = 8192
	maxEncodedRecordSize = 64 << 10
)

// Leaf encoding, version 1 (docs/audit.md has the byte layout).
const (
	leafVersion    = 1
	leafHeaderSize = 1 + 8 + 8 // version, index, logged_at
)

// signingDomain prefixes SigningPayload, so a signature over an audit
// record can never be taken for a signature over anything else.
const signingDomain = "creto-audit-record/v1\n"

// maxTimestamp is the last instant an int64 of nanoseconds can hold.
var maxTimestamp = time.Unix(0, 1<<63-1)

// validate checks every field against the format limits and returns the
// record's body encoding (everything but index, logged_at and signature).
func (r *Record) validate() ([]byte, error) {
	if r.Timestamp.Before(time.Unix(0, 0)) || r.Timestamp.After(maxTimestamp) {
		return nil, detail(ErrInvalidArgument, "timestamp outside 1970..2262")
	}
	if !r.Outcome.valid() {
		return nil, detail(ErrInvalidArgument, "outcome %d", uint8(r.Outcome))
	}
	checks := []struct {
		name     string
		v        string
		max      int
		required bool
		id       bool
	}{
		{"source", r.Source, MaxSourceLen, false, true},
		{"who", r.Who, MaxIDLen, true, true},
		{"what", r.What, MaxIDLen, true, true},
		{"resource", r.Resource, MaxResourceLen, false, true},
		{"why", r.Why, MaxWhyLen, false, false},
		{"policy_id", r.PolicyID, MaxIDLen, false, true},
		{"trace_id", r.TraceID, MaxIDLen, false, true},
	}
	for _, c := range checks {
		if err := checkString(c.name, c.v, c.max, c.required, c.id); err != nil {
			return nil, err
		}
	}
	if len(r.DelegationChain) > MaxChainLinks {
		return nil, detail(ErrTooLarge, "delegation chain has %d links, limit %d", len(r.DelegationChain), MaxChainLinks)
	}
	for i, l := range r.DelegationChain {
		if err := checkString(fmt.Sprintf("delegation_chain[%d]", i), l, MaxIDLen, true, true); err != nil {
			return nil, err
		}
	}
	if len(r.Context) > MaxContextEntries {
		return nil, detail(ErrTooLarge, "context has %d entries, limit %d", len(r.Context), MaxContextEntries)
	}
	for k, v := range r.Context {
		if err := checkString("context key", k, MaxContextKeyLen, true, true); err != nil {
			return nil, err
		}
		if err := checkString("context value", v, MaxContextValueLen, false, false); err != nil {
			return nil, err
		}
	}
	if len(r.Signature) > MaxSignatureLen {
		return nil, detail(ErrTooLarge, "signature is %d bytes, limit %d", len(r.Signature), MaxSignatureLen)
	}
	return r.appendBody(make([]byte, 0, r.bodySize())), nil
}

// bodySize is the length appendBody will produce, so the buffer is
// allocated once.
func (r *Record) bodySize() int {
	n := 8 + 1 + 7*2 + len(r.Source) + len(r.Who) + len(r.What) + len(r.Resource) + len(r.Why) + len(r.PolicyID) + len(r.TraceID) + 2
	for _, l := range r.DelegationChain {
		n += 2 + len(l)
	}
	for k, v := range r.Context {
		n += 4 + len(k) + len(v)
	}
	return n + 2 + len(r.Signature) // room for the signature appended after
}

// checkString applies one field's rules: a length limit, valid UTF-8, and
// for identifiers no control characters, so an id printed by the CLI or a
// log viewer cannot forge lines.
func checkString(name, v string, max int, required, id bool) error {
	switch {
	case required && v == "":
		return detail(ErrInvalidArgument, "%s is empty", name)
	case len(v) > max:
		return detail(ErrTooLarge, "%s is %d bytes, limit %d", name, len(v), max)
	case !utf8.ValidString(v):
		return detail(ErrInvalidArgument, "%s is not valid UTF-8", name)
	case id && strings.IndexFunc(v, isControl) >= 0:
		return detail(ErrInvalidArgument, "%s contains a control character", name)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// appendBody appends the emitter's part of the encoding: timestamp,
// outcome, the strings, the chain and the context, keys sorted.
func (r *Record) appendBody(dst []byte) []byte {
	e := wire.Encoder(dst)
	e.I64(r.Timestamp.UnixNano())
	e.U8(uint8(r.Outcome))
	for _, s := range [...]string{r.Source, r.Who, r.What, r.Resource, r.Why, r.PolicyID, r.TraceID} {
		e.Str16(s)
	}
	e.U8(uint8(len(r.DelegationChain)))
	for _, l := range r.DelegationChain {
		e.Str16(l)
	}
	e.U8(uint8(len(r.Context)))
	var small [8]string // most records carry a few entries: sort them without allocating
	keys := small[:0]
	for k := range r.Context {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		e.Str16(k)
		e.Str16(r.Context[k])
	}
	return e
}

// appendTail appends the signature to a body: the leaf after its header.
// validate sizes the body's buffer for it, so this does not copy.
func appendTail(body, sig []byte) []byte {
	e := wire.Encoder(body)
	e.Bytes16(sig)
	return e
}

// appendLeafHeader appends the header the log adds to a record's tail:
// version, index, logged_at.
func appendLeafHeader(dst []byte, index uint64, loggedAt int64) []byte {
	e := wire.Encoder(dst)
	e.U8(leafVersion)
	e.U64(index)
	e.I64(loggedAt)
	return e
}

// SigningPayload returns the bytes Signature covers: a domain prefix and
// the record's body encoding — everything but Index, LoggedAt and the
// signature itself, which are not known when the emitter signs. Zero
// Timestamp is not filled in here: sign a record whose Timestamp is set.
func (r *Record) SigningPayload() ([]byte, error) {
	body, err := r.validate()
	if err != nil {
		return nil, opError("signing payload", "", err)
	}
	return append([]byte(signingDomain), body...), nil
}

// Validate checks the record against the format's rules, as Log does,
// a zero Timestamp standing for now; what depends on a log's
// configuration (max_record_bytes, max_clock_skew) is left to the log. An
// emitter that takes records from an untrusted party calls it to refuse a
// bad one at once, where a Logger would count it invalid later.
func (r *Record) Validate() error {
	c := *r
	if c.Timestamp.IsZero() {
		c.Timestamp = time.Now()
	}
	if _, err := c.validate(); err != nil {
		return opError("validate", "", err)
	}
	return nil
}

// EncodeLeaf returns the record's leaf encoding (docs/audit.md), the bytes
// whose RFC 6962 leaf hash is in the tree. Index and LoggedAt are encoded
// as they are.
func EncodeLeaf(r *Record) ([]byte, error) {
	body, err := r.validate()
	if err != nil {
		return nil, opError("encode leaf", "", err)
	}
	if r.LoggedAt.Before(time.Unix(0, 0)) || r.LoggedAt.After(maxTimestamp) {
		return nil, opError("encode leaf", "", detail(ErrInvalidArgument, "logged_at outside 1970..2262"))
	}
	leaf := appendLeafHeader(make([]byte, 0, leafHeaderSize+len(body)+2+len(r.Signature)), r.Index, r.LoggedAt.UnixNano())
	return append(leaf, appendTail(body, r.Signature)...), nil
}

// DecodeLeaf parses a leaf encoding. It is strict: every byte string it
// accepts is the encoding of exactly one record, which EncodeLeaf gives
// back byte for byte, so two different leaves can never decode to the
// same record.
func DecodeLeaf(b []byte) (Record, error) {
	r, err := decodeLeaf(b)
	if err != nil {
		return Record{}, fmt.Errorf("audit: decode leaf: %w: %w", ErrMalformed, err)
	}
	return r, nil
}

func decodeLeaf(b []byte) (Record, error) {
	var r Record
	if len(b) > maxEncodedRecordSize {
		return r, fmt.Errorf("%d bytes, limit %d", len(b), maxEncodedRecordSize)
	}
	d := wire.NewDecoder(b)
	if v := d.U8(); v != leafVersion {
		d.Fail("version %d, this build reads %d", v, leafVersion)
	}
	r.Index = d.U64()
	loggedAt, ts := d.I64(), d.I64()
	r.Outcome = Outcome(d.U8())
	for _, f := range [...]struct {
		p   *string
		max int
	}{
		{&r.Source, MaxSourceLen}, {&r.Who, MaxIDLen}, {&r.What, MaxIDLen}, {&r.Resource, MaxResourceLen},
		{&r.Why, MaxWhyLen}, {&r.PolicyID, MaxIDLen}, {&r.TraceID, MaxIDLen},
	} {
		*f.p = d.Str16(f.max)
	}
	if n := int(d.U8()); n > 0 {
		r.DelegationChain = make([]string, 0, min(n, MaxChainLinks))
		for range n {
			r.DelegationChain = append(r.DelegationChain, d.Str16(MaxIDLen))
		}
	}
	if n := int(d.U8()); n > 0 {
		r.Context = make(map[string]string, min(n, MaxContextEntries))
		prev := ""
		for i := range n {
			k, v := d.Str16(MaxContextKeyLen), d.Str16(MaxContextValueLen)
			if i > 0 && k <= prev {
				d.Fail("context keys not strictly ascending at %s", quote(k))
			}
			r.Context[k], prev = v, k
		}
	}
	if sig := d.Bytes16(MaxSignatureLen); len(sig) > 0 {
		r.Signature = bytes.Clone(sig) // b may be a buffer the caller reuses
	}
	if err := d.Finish(); err != nil {
		return r, err
	}
	if loggedAt < 0 || ts < 0 {
		return r, fmt.Errorf("negative time")
	}
	r.LoggedAt = time.Unix(0, loggedAt).UTC()
	r.Timestamp = time.Unix(0, ts).UTC()
	// The field rules are those Log applies, so a leaf that decodes is a
	// record Log could have written.
	if _, err := r.validate(); err != nil {
		return r, err
	}
	return r, nil
}

// leafWho reads only the Who of a leaf the log wrote, which is all an
// access check needs, without decoding the rest.
func leafWho(leaf []byte) (string, error) {
	d := wire.NewDecoder(leaf)
	if v := d.U8(); v != leafVersion {
		d.Fail("version %d", v)
	}
	d.Take(leafHeaderSize - 1 + 8 + 1) // index, logged_at, timestamp, outcome
	d.Bytes16(MaxSourceLen)
	who := d.Str16(MaxIDLen)
	return who, d.Err()
}
