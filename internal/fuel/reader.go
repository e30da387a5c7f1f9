package fuel

import (
	"fmt"
	"unicode/utf8"
)

// reader decodes the binary format with a bounds check on every byte.
// Offsets are absolute in the module so that errors point at the input
// itself; limit is the end of the enclosing section or function body, so a
// size that lies cannot make a read spill into the next one.
type reader struct {
	buf   []byte
	pos   int
	limit int
	sec   string
	fn    int
}

func (r *reader) fail(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Section: r.sec, Func: r.fn, Offset: r.pos, Msg: fmt.Sprintf(format, args...)}
}

func (r *reader) eof() *Error {
	return r.fail(ErrMalformed, "unexpected end of %s", r.unit())
}

func (r *reader) unit() string {
	switch {
	case r.fn >= 0:
		return "function body"
	case r.sec != "":
		return "section"
	}
	return "module"
}

func (r *reader) remaining() int { return r.limit - r.pos }

func (r *reader) byte() (byte, error) {
	if r.pos < r.limit {
		r.pos++
		return r.buf[r.pos-1], nil
	}
	return 0, r.eof()
}

func (r *reader) skip(n int) error {
	if n < 0 || n > r.remaining() {
		return r.eof()
	}
	r.pos += n
	return nil
}

// u32 reads an unsigned LEB128 of at most 5 bytes. Non-minimal encodings are
// valid Wasm, but bits beyond 32 are not.
func (r *reader) u32() (uint32, error) {
	// Most immediates fit in one byte; keep that path small enough to inline.
	if r.pos < r.limit && r.buf[r.pos] < 0x80 {
		r.pos++
		return uint32(r.buf[r.pos-1]), nil
	}
	return r.u32Long()
}

func (r *reader) u32Long() (uint32, error) {
	start := r.pos
	var v uint32
	for i := 0; i < 5; i++ {
		b, err := r.byte()
		if err != nil {
			return 0, err
		}
		if i == 4 && b&0xF0 != 0 {
			r.pos = start
			return 0, r.fail(ErrMalformed, "LEB128 u32 overflows 32 bits")
		}
		v |= uint32(b&0x7F) << (7 * i)
		if b < 0x80 {
			return v, nil
		}
	}
	return v, nil // unreachable: the fifth byte has no continuation bit
}

// count reads a vector length and rejects one that cannot fit in what is
// left, so that no caller ever sizes anything from an unchecked count.
func (r *reader) count(minItemSize int) (int, error) {
	at := r.pos
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n)*uint64(minItemSize) > uint64(r.remaining()) {
		r.pos = at
		return 0, r.fail(ErrMalformed, "vector of %d items does not fit in the %d bytes left", n, r.remaining())
	}
	return int(n), nil
}

// signed reads a signed LEB128 of the given width. The spare bits of the
// last byte must repeat the sign bit, as the spec requires.
func (r *reader) signed(bits int) (int64, error) {
	start := r.pos
	maxLen := (bits + 6) / 7
	var v int64
	shift := 0
	for i := 0; i < maxLen; i++ {
		b, err := r.byte()
		if err != nil {
			return 0, err
		}
		if i == maxLen-1 {
			spare := 7*maxLen - bits
			// The sign bit sits at position 6-spare; it and every bit
			// above it must agree.
			mask := byte(0x7F) &^ (byte(1)<<(6-spare) - 1)
			if b&0x80 != 0 || (b&mask != 0 && b&mask != mask) {
				r.pos = start
				return 0, r.fail(ErrMalformed, "LEB128 s%d overflows %d bits", bits, bits)
			}
		}
		v |= int64(b&0x7F) << shift
		shift += 7
		if b < 0x80 {
			if shift < 64 && b&0x40 != 0 {
				v |= -1 << shift
			}
			return v, nil
		}
	}
	return v, nil // unreachable: the last byte was checked above
}

// name reads a length-prefixed UTF-8 name.
func (r *reader) name() ([]byte, error) {
	n, err := r.count(1)
	if err != nil {
		return nil, err
	}
	s := r.buf[r.pos : r.pos+n]
	if !utf8.Valid(s) {
		return nil, r.fail(ErrMalformed, "name is not valid UTF-8")
	}
	r.pos += n
	return s, nil
}

// valType reads a value type. Single-byte reference types beyond funcref and
// externref, and the multi-byte ones, belong to proposals whose instructions
// this package does not decode.
func (r *reader) valType() error {
	b, err := r.byte()
	if err != nil {
		return err
	}
	switch b {
	case 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F:
		return nil
	}
	r.pos--
	if b >= 0x60 && b < 0x80 {
		return r.fail(ErrUnsupported, "value type 0x%02x (typed references, GC or exception handling)", b)
	}
	return r.fail(ErrMalformed, "invalid value type 0x%02x", b)
}

// limits reads table or memory limits. Shared (threads) and 64-bit
// (memory64, table64) limits change instruction operand types, so they are
// rejected rather than silently mis-metered.
func (r *reader) limits() error {
	flags, err := r.byte()
	if err != nil {
		return err
	}
	switch {
	case flags > 0x07:
		r.pos--
		return r.fail(ErrMalformed, "invalid limits flags 0x%02x", flags)
	case flags&0x02 != 0:
		r.pos--
		return r.fail(ErrUnsupported, "shared memory (threads)")
	case flags&0x04 != 0:
		r.pos--
		return r.fail(ErrUnsupported, "64-bit limits (memory64)")
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if flags&0x01 != 0 {
		_, err = r.u32()
	}
	return err
}
