// Package wire reads and writes Creto's fixed-order binary records:
// big-endian integers, length-prefixed bytes and strings, one encoding per
// value. A record is its fields in a documented order with nothing between
// them (no tags, no padding), so whatever decodes re-encodes to the same
// bytes: a signature covers exactly the bytes on the wire, a stored
// record has one spelling, and a fuzz target can check both directions.
//
// The Encoder appends fields to a byte slice. The Decoder reads them back
// in the same order and keeps its first failure, so a format's decode
// function reads as its list of fields with one error check at the end;
// each service wraps that error in its own sentinel (a malformed token, a
// corrupt record).
//
// What a field means, and which values are valid, stays with the format
// that owns it: this package knows widths and lengths, not tokens or
// secrets.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Encoder is a record being written: the bytes so far. The zero value is
// an empty record, and converting a buffer, wire.Encoder(dst), appends to
// it, so a caller that owns a buffer writes into it without a copy; an
// Encoder is a []byte wherever one is wanted.
//
// A length-prefixed field longer than its prefix can count panics: the
// caller validates lengths against the format's limits before encoding,
// and writing a wrong prefix would store a record that never decodes.
type Encoder []byte

// U8 appends one byte.
func (e *Encoder) U8(v uint8) { *e = append(*e, v) }

// U16 appends v, big-endian.
func (e *Encoder) U16(v uint16) { *e = binary.BigEndian.AppendUint16(*e, v) }

// U32 appends v, big-endian.
func (e *Encoder) U32(v uint32) { *e = binary.BigEndian.AppendUint32(*e, v) }

// U64 appends v, big-endian.
func (e *Encoder) U64(v uint64) { *e = binary.BigEndian.AppendUint64(*e, v) }

// I64 appends v as its two's-complement uint64, big-endian.
func (e *Encoder) I64(v int64) { e.U64(uint64(v)) }

// Bool appends 1 for true and 0 for false, the only two bytes Decoder.Bool
// accepts.
func (e *Encoder) Bool(v bool) {
	var b uint8
	if v {
		b = 1
	}
	e.U8(b)
}

// Raw appends v as it is, for fixed-size fields (ids, digests, salts) and
// for a tail whose length the format knows.
func (e *Encoder) Raw(v []byte) { *e = append(*e, v...) }

// Bytes8 appends a 1-byte length and v. It panics if v exceeds 255 bytes.
func (e *Encoder) Bytes8(v []byte) { e.prefixed8(len(v)); e.Raw(v) }

// Str8 appends a 1-byte length and s. It panics if s exceeds 255 bytes.
func (e *Encoder) Str8(s string) { e.prefixed8(len(s)); *e = append(*e, s...) }

// Bytes16 appends a 2-byte length and v. It panics if v exceeds 65535
// bytes.
func (e *Encoder) Bytes16(v []byte) { e.prefixed16(len(v)); e.Raw(v) }

// Str16 appends a 2-byte length and s. It panics if s exceeds 65535 bytes.
func (e *Encoder) Str16(s string) { e.prefixed16(len(s)); *e = append(*e, s...) }

func (e *Encoder) prefixed8(n int) {
	if n > math.MaxUint8 {
		overflow(n, math.MaxUint8)
	}
	e.U8(uint8(n))
}

func (e *Encoder) prefixed16(n int) {
	if n > math.MaxUint16 {
		overflow(n, math.MaxUint16)
	}
	e.U16(uint16(n))
}

// overflow reports a field its length prefix cannot count.
func overflow(n, limit int) {
	panic(fmt.Sprintf("wire: a %d-byte field does not fit a length prefix of at most %d", n, limit))
}

// The Decoder's failures. They stay unexported: a service reports every
// decode failure as its own sentinel, and only the message tells which
// field went wrong.
var (
	errTruncated = errors.New("truncated")
	errTooLong   = errors.New("field too long")
	errNotUTF8   = errors.New("string is not UTF-8")
	errBool      = errors.New("boolean byte is neither 0 nor 1")
	errTrailing  = errors.New("trailing bytes")
)

// Decoder reads a record's fields in order. After the first failure every
// read returns a zero value and the failure stays the one reported, so a
// decode function reads straight through and checks once, with Err or
// Finish. Slices it returns alias the input: clone what outlives it.
type Decoder struct {
	b   []byte
	err error
}

// NewDecoder returns a Decoder over b.
func NewDecoder(b []byte) Decoder { return Decoder{b: b} }

// Take returns the next n bytes, or nil (and a failure) when fewer are
// left. The result's capacity ends at its length, so appending to it
// never overwrites the rest of the input.
func (d *Decoder) Take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = truncatedError{need: n, have: len(d.b)}
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// truncatedError is a read past the end of the input. It is a plain value
// rather than a fmt.Errorf so that Take, which every read goes through,
// stays small enough to inline.
type truncatedError struct{ need, have int }

func (e truncatedError) Error() string {
	return fmt.Sprintf("%v: need %d bytes, have %d", errTruncated, e.need, e.have)
}

func (e truncatedError) Unwrap() error { return errTruncated }

// U8 reads one byte.
func (d *Decoder) U8() uint8 {
	if v := d.Take(1); v != nil {
		return v[0]
	}
	return 0
}

// U16 reads a big-endian uint16.
func (d *Decoder) U16() uint16 {
	if v := d.Take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

// U32 reads a big-endian uint32.
func (d *Decoder) U32() uint32 {
	if v := d.Take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

// U64 reads a big-endian uint64.
func (d *Decoder) U64() uint64 {
	if v := d.Take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// I64 reads what Encoder.I64 writes.
func (d *Decoder) I64() int64 { return int64(d.U64()) }

// Bool reads a byte that must be 0 or 1, so a boolean has one encoding.
func (d *Decoder) Bool() bool {
	switch v := d.U8(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.err = fmt.Errorf("%w: %d", errBool, v) // U8 succeeded, so no failure is recorded yet
		return false
	}
}

// Bytes8 reads a 1-byte length and that many bytes, failing without
// reading them when the length exceeds limit: the format's bound on the
// field, or math.MaxUint8 for none beyond the prefix's.
func (d *Decoder) Bytes8(limit int) []byte { return d.bounded(int(d.U8()), limit) }

// Bytes16 reads a 2-byte length and that many bytes, failing without
// reading them when the length exceeds limit: the format's bound on the
// field, or math.MaxUint16 for none beyond the prefix's.
func (d *Decoder) Bytes16(limit int) []byte { return d.bounded(int(d.U16()), limit) }

// Str8 reads what Encoder.Str8 writes: at most limit bytes of valid UTF-8.
func (d *Decoder) Str8(limit int) string { return d.utf8(d.Bytes8(limit)) }

// Str16 reads what Encoder.Str16 writes: at most limit bytes of valid
// UTF-8.
func (d *Decoder) Str16(limit int) string { return d.utf8(d.Bytes16(limit)) }

// bounded takes a field of n bytes, the length just read, unless that
// read failed or n exceeds limit. The bound is checked before the bytes
// are, so a hostile length fails as too long whatever follows it.
func (d *Decoder) bounded(n, limit int) []byte {
	if d.err == nil && n > limit {
		d.err = fmt.Errorf("%w: %d bytes, limit %d", errTooLong, n, limit)
	}
	return d.Take(n)
}

func (d *Decoder) utf8(v []byte) string {
	if d.err == nil && !utf8.Valid(v) {
		d.err = errNotUTF8
	}
	return string(v)
}

// Len returns how many bytes are left: what the fields read so far did
// not consume.
func (d *Decoder) Len() int { return len(d.b) }

// Fail records a failure of the format's own (a field value out of range,
// an unknown version) unless an earlier one is recorded.
func (d *Decoder) Fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

// Err returns the first failure, or nil.
func (d *Decoder) Err() error { return d.err }

// Finish ends a record that must fill its input: it returns the first
// failure, or a failure when bytes are left after the last field.
func (d *Decoder) Finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d %w", len(d.b), errTrailing)
	}
	return d.err
}
