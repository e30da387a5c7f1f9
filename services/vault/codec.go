package vault

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Records are fixed-order binary with big-endian integers and one
// encoding per value (maps sorted by key), so whatever decodes re-encodes
// to the same bytes and the fuzz targets can check exactly that.

type encoder struct{ b []byte }

func (e *encoder) u8(v uint8)   { e.b = append(e.b, v) }
func (e *encoder) u16(v uint16) { e.b = binary.BigEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.BigEndian.AppendUint32(e.b, v) }
func (e *encoder) i64(v int64)  { e.b = binary.BigEndian.AppendUint64(e.b, uint64(v)) }
func (e *encoder) raw(v []byte) { e.b = append(e.b, v...) }

// str writes a u16 length and the bytes; every string the vault stores is
// bounded well below 64 KiB by validation.
func (e *encoder) str(v string) { e.u16(uint16(len(v))); e.b = append(e.b, v...) }

func (e *encoder) bool(v bool) {
	if v {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

// decoder reads fields in order and keeps the first failure, so a
// record's decode function reads as its list of fields with one error
// check at the end.
type decoder struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

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

// str reads a length-prefixed UTF-8 string.
func (d *decoder) str() string {
	v := d.take(int(d.u16()))
	if d.err == nil && !utf8.Valid(v) {
		d.fail("string is not UTF-8")
	}
	return string(v)
}

// bool accepts only 0 and 1, so each value has one encoding.
func (d *decoder) bool() bool {
	switch v := d.u8(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail("boolean byte %d", v)
		return false
	}
}

// fail records a semantic error unless an earlier one is recorded.
func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

// finish reports the first failure, or trailing bytes, as ErrCorrupt.
func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, d.err)
	}
	return nil
}
