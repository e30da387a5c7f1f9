package nhi

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The token and delegation formats are fixed-order binary: every field has
// one encoding, so whatever decodes re-encodes to the same bytes, and the
// bytes a signature covers are exactly the bytes on the wire.

type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)       { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16)     { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32)     { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) i64(v int64)      { e.b = binary.BigEndian.AppendUint64(e.b, uint64(v)) }
func (e *encoder) raw(v []byte)     { e.b = append(e.b, v...) }
func (e *encoder) str8(v string)    { e.u8(uint8(len(v))); e.b = append(e.b, v...) }
func (e *encoder) bytes16(v []byte) { e.u16(uint16(len(v))); e.b = append(e.b, v...) }

// errTruncated is what a decoder reports for input that ends early; the
// caller wraps it in its own format's sentinel.
var errTruncated = errors.New("truncated")

// decoder reads fields in order and remembers the first failure, so a
// format's decode function reads as a list of fields with one error check
// at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = errTruncated
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if v := d.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) i64() int64 {
	if v := d.take(8); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func (d *decoder) str8() string { return string(d.take(int(d.u8()))) }

func (d *decoder) bytes16() []byte { return d.take(int(d.u16())) }

// fail records a semantic error (a bad field value) unless an earlier one
// is already recorded.
func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

// finish reports the first failure, or trailing bytes after the last field.
func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	return d.err
}
