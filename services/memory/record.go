package memory

import (
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/creto-systems/creto/internal/agentid"
)

// Type classifies a memory, so queries can be narrowed to the kinds a
// reader needs (oversight reads Reasoning and Context; seed §4.3).
type Type uint8

// The memory types of seed §4.2. TypeUnspecified is not storable: a
// memory nobody classified would be invisible to every type filter.
const (
	TypeUnspecified Type = iota
	Observation
	Reasoning
	Conversation
	ToolResult
	Context
	LongTerm
)

var typeNames = [...]string{"unspecified", "observation", "reasoning", "conversation", "tool_result", "context", "long_term"}

// String returns the type's snake_case name.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

func (t Type) valid() bool { return t > TypeUnspecified && t <= LongTerm }

// Memory is one stored memory. Values returned by the service are copies:
// changing one changes nothing stored.
type Memory struct {
	// ID is assigned by Store: 32 hex digits, the first 16 the creation
	// time, so ids sort roughly by age.
	ID string
	// Agent owns the memory.
	Agent     string
	Content   string
	Type      Type
	Metadata  map[string]string
	CreatedAt time.Time
	// ExpiresAt is zero for a memory that never expires.
	ExpiresAt time.Time
}

func (m *Memory) clone() Memory {
	c := *m
	c.Metadata = maps.Clone(m.Metadata)
	return c
}

// expired reports whether m is past its expiry at unix nanosecond now.
func (m *Memory) expired(now int64) bool {
	return !m.ExpiresAt.IsZero() && m.ExpiresAt.UnixNano() <= now
}

// Limits of the record format, and so the ceilings of Config.
const (
	maxFieldBytes      = math.MaxUint16
	maxMetadataEntries = math.MaxUint16
	maxContentBytes    = 16 << 20
	maxDimensions      = 16384
	maxAgentBytes      = 256
	recordVersion      = 1
)

// validateAgent accepts the ids nhi accepts: non-empty, bounded, UTF-8,
// no spaces or control characters (which would forge log lines).
func validateAgent(what, id string) error {
	if err := agentid.Check(id, maxAgentBytes); err != nil {
		return invalid(nil, "%s %v", what, err)
	}
	return nil
}

// A record is a memory and its unit vector as stored under
// "memory/rec/<id>". The format is fixed-order binary with big-endian
// integers and one encoding per value (metadata sorted by key), so a
// decoded record re-encodes to the same bytes:
//
//	u8 version (1) | u16 len, id | u16 len, agent | u8 type |
//	i64 created unix ns | i64 expires unix ns (0 = never) |
//	u32 len, content | u16 count, count × (u16 len, key | u16 len, value) |
//	u16 dims, dims × f32 bits
type record struct {
	mem Memory
	vec []float32
}

func encodeRecord(r *record) []byte {
	m := &r.mem
	n := 1 + 2 + len(m.ID) + 2 + len(m.Agent) + 1 + 16 + 4 + len(m.Content) + 2 + 2 + 4*len(r.vec)
	for k, v := range m.Metadata {
		n += 4 + len(k) + len(v)
	}
	b := make([]byte, 0, n)
	str16 := func(s string) []byte { return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...) }
	b = append(b, recordVersion)
	b = str16(m.ID)
	b = str16(m.Agent)
	b = append(b, byte(m.Type))
	b = binary.BigEndian.AppendUint64(b, uint64(m.CreatedAt.UnixNano()))
	var exp int64
	if !m.ExpiresAt.IsZero() {
		exp = m.ExpiresAt.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(exp))
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Content)))
	b = append(b, m.Content...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Metadata)))
	for _, k := range slices.Sorted(maps.Keys(m.Metadata)) {
		b = str16(k)
		b = str16(m.Metadata[k])
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.vec)))
	for _, x := range r.vec {
		b = binary.BigEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// recordDecoder reads fields in order and keeps the first failure, so
// decodeRecord reads as the list of fields above with checks at the end.
type recordDecoder struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (d *recordDecoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.err = errTruncated
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *recordDecoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *recordDecoder) u16() int {
	if v := d.take(2); v != nil {
		return int(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (d *recordDecoder) u32() int {
	if v := d.take(4); v != nil {
		return int(binary.BigEndian.Uint32(v))
	}
	return 0
}

func (d *recordDecoder) i64() int64 {
	if v := d.take(8); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func (d *recordDecoder) str16() string { return string(d.take(d.u16())) }

func (d *recordDecoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
}

// decodeRecord parses and checks a stored record. It trusts nothing: a
// record that would not have been accepted by Store is ErrCorrupt, so a
// damaged store fails loudly at open instead of serving odd memories.
func decodeRecord(b []byte) (*record, error) {
	d := &recordDecoder{b: b}
	if d.u8() != recordVersion {
		d.fail("unknown version")
	}
	r := &record{}
	m := &r.mem
	m.ID = d.str16()
	m.Agent = d.str16()
	m.Type = Type(d.u8())
	created, expires := d.i64(), d.i64()
	m.Content = string(d.take(d.u32()))
	if n := d.u16(); n > 0 && d.err == nil {
		m.Metadata = make(map[string]string, min(n, len(d.b)/4))
		prev := ""
		for i := 0; i < n && d.err == nil; i++ {
			k, v := d.str16(), d.str16()
			if k == "" || (i > 0 && k <= prev) || !utf8.ValidString(k) || !utf8.ValidString(v) {
				d.fail("metadata keys empty, unsorted, repeated or not UTF-8")
			}
			m.Metadata[k] = v
			prev = k
		}
	}
	dims := d.u16()
	if dims > 0 && d.err == nil {
		r.vec = make([]float32, 0, min(dims, len(d.b)/4))
		for range dims {
			raw := d.take(4)
			if raw == nil {
				break
			}
			x := math.Float32frombits(binary.BigEndian.Uint32(raw))
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				d.fail("non-finite vector component")
			}
			r.vec = append(r.vec, x)
		}
	}
	switch {
	case d.err != nil:
	case len(d.b) != 0:
		d.fail("trailing bytes")
	case !validID(m.ID):
		d.fail("bad id")
	case validateAgent("agent", m.Agent) != nil:
		d.fail("bad agent")
	case !m.Type.valid():
		d.fail("bad type")
	case m.Content == "" || !utf8.ValidString(m.Content):
		d.fail("content empty or not UTF-8")
	case dims == 0:
		d.fail("no vector")
	case expires != 0 && expires <= created:
		d.fail("expires before it was created")
	}
	if d.err != nil {
		return nil, errors.Join(ErrCorrupt, d.err)
	}
	m.CreatedAt = time.Unix(0, created).UTC()
	if expires != 0 {
		m.ExpiresAt = time.Unix(0, expires).UTC()
	}
	return r, nil
}

// validID accepts what newID produces: 32 lower-case hex digits.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
