package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestEncoderWritesEachField(t *testing.T) {
	for _, c := range []struct {
		name  string
		write func(e *Encoder)
		want  string
	}{
		{"U8", func(e *Encoder) { e.U8(0xfe) }, "fe"},
		{"U16", func(e *Encoder) { e.U16(0x0102) }, "0102"},
		{"U32", func(e *Encoder) { e.U32(0x01020304) }, "01020304"},
		{"U64", func(e *Encoder) { e.U64(0x0102030405060708) }, "0102030405060708"},
		{"I64", func(e *Encoder) { e.I64(-2) }, "fffffffffffffffe"},
		{"I64 min", func(e *Encoder) { e.I64(math.MinInt64) }, "8000000000000000"},
		{"Bool true", func(e *Encoder) { e.Bool(true) }, "01"},
		{"Bool false", func(e *Encoder) { e.Bool(false) }, "00"},
		{"Raw", func(e *Encoder) { e.Raw([]byte{9, 8}) }, "0908"},
		{"Raw empty", func(e *Encoder) { e.Raw(nil) }, ""},
		{"Bytes8", func(e *Encoder) { e.Bytes8([]byte{0xaa, 0xbb}) }, "02aabb"},
		{"Bytes8 empty", func(e *Encoder) { e.Bytes8(nil) }, "00"},
		{"Str8", func(e *Encoder) { e.Str8("hé") }, "0368c3a9"},
		{"Bytes16", func(e *Encoder) { e.Bytes16([]byte{0xaa}) }, "0001aa"},
		{"Str16", func(e *Encoder) { e.Str16("ab") }, "00026162"},
		{"Str16 empty", func(e *Encoder) { e.Str16("") }, "0000"},
	} {
		var e Encoder // the zero value is an empty record
		c.write(&e)
		if got := hex.EncodeToString(e); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestEncoderAppendsToABuffer(t *testing.T) {
	buf := make([]byte, 2, 16)
	buf[0], buf[1] = 'h', 'i'
	e := Encoder(buf)
	e.U16(7)
	e.Str8("x")
	if got := string(e); got != "hi\x00\x07\x01x" {
		t.Fatalf("%q", got)
	}
	if &e[0] != &buf[0] {
		t.Fatal("the encoder copied a buffer with room to spare")
	}
}

func TestEncoderLengthLimits(t *testing.T) {
	var e Encoder
	e.Str8(strings.Repeat("a", math.MaxUint8))
	e.Bytes16(make([]byte, math.MaxUint16))
	if len(e) != 1+math.MaxUint8+2+math.MaxUint16 || e[0] != 0xff || e[256] != 0xff || e[257] != 0xff {
		t.Fatal("the longest fields are not encoded with full prefixes")
	}
	for name, write := range map[string]func(){
		"Bytes8":  func() { e.Bytes8(make([]byte, math.MaxUint8+1)) },
		"Str8":    func() { e.Str8(strings.Repeat("a", math.MaxUint8+1)) },
		"Bytes16": func() { e.Bytes16(make([]byte, math.MaxUint16+1)) },
		"Str16":   func() { e.Str16(strings.Repeat("a", math.MaxUint16+1)) },
	} {
		before := len(e)
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), "does not fit") {
					t.Errorf("%s of an oversize field: recovered %v", name, r)
				}
			}()
			write()
		}()
		if len(e) != before {
			t.Errorf("%s wrote %d bytes before refusing", name, len(e)-before)
		}
	}
}

// record is a simple record shape holding one field of every kind, for
// the round-trip tests and the fuzz target.
type record struct {
	u8             uint8
	u16            uint16
	u32            uint32
	u64            uint64
	i64            int64
	flag           bool
	id             [4]byte
	b8, b16        []byte
	s8, s16        string
	bounded, label string
}

const (
	boundedLimit = 5
	labelLimit   = 300
)

func (r record) encode() []byte {
	var e Encoder
	e.U8(r.u8)
	e.U16(r.u16)
	e.U32(r.u32)
	e.U64(r.u64)
	e.I64(r.i64)
	e.Bool(r.flag)
	e.Raw(r.id[:])
	e.Bytes8(r.b8)
	e.Bytes16(r.b16)
	e.Str8(r.s8)
	e.Str16(r.s16)
	e.Str8(r.bounded)
	e.Str16(r.label)
	return e
}

func decodeRecord(b []byte) (record, error) {
	var r record
	d := NewDecoder(b)
	r.u8 = d.U8()
	r.u16 = d.U16()
	r.u32 = d.U32()
	r.u64 = d.U64()
	r.i64 = d.I64()
	r.flag = d.Bool()
	copy(r.id[:], d.Take(len(r.id)))
	r.b8 = d.Bytes8(math.MaxUint8)
	r.b16 = d.Bytes16(math.MaxUint16)
	r.s8 = d.Str8(math.MaxUint8)
	r.s16 = d.Str16(math.MaxUint16)
	r.bounded = d.Str8(boundedLimit)
	r.label = d.Str16(labelLimit)
	return r, d.Finish()
}

func sample() record {
	return record{
		u8: 1, u16: 0x0203, u32: 0x04050607, u64: 1 << 63, i64: -1, flag: true, id: [4]byte{9, 9, 9, 9},
		b8: []byte{0xff, 0}, b16: []byte("sixteen"), s8: "Grüße", s16: "", bounded: "12345", label: "ok",
	}
}

func TestDecoderRoundTrip(t *testing.T) {
	r := sample()
	enc := r.encode()
	got, err := decodeRecord(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.encode(), enc) || got.s8 != r.s8 || got.i64 != -1 || got.u64 != 1<<63 || !got.flag {
		t.Fatalf("round trip: %+v", got)
	}
}

func TestDecoderTruncatedAnywhere(t *testing.T) {
	enc := sample().encode()
	for n := range len(enc) {
		if _, err := decodeRecord(enc[:n]); !errors.Is(err, errTruncated) {
			t.Fatalf("cut to %d bytes: %v", n, err)
		}
	}
}

func TestDecoderKeepsTheFirstFailure(t *testing.T) {
	d := NewDecoder([]byte{1, 2})
	if d.U8() != 1 || d.Err() != nil || d.Len() != 1 {
		t.Fatal("first byte")
	}
	if v := d.U32(); v != 0 || !errors.Is(d.Err(), errTruncated) {
		t.Fatalf("a short read returned %d, %v", v, d.Err())
	}
	first := d.Err()
	// Everything after the failure reads zero, even what would fit, and
	// nothing replaces the failure.
	if d.U8() != 0 || d.Take(0) != nil || d.Str8(10) != "" || d.Bool() || d.Len() != 1 {
		t.Fatal("a read after the failure returned data or consumed input")
	}
	d.Fail("later %d", 1)
	if d.Err() != first || d.Finish() != first {
		t.Fatalf("the failure changed to %v", d.Err())
	}
	if !strings.Contains(first.Error(), "need 4 bytes, have 1") {
		t.Fatalf("message %q", first)
	}
}

func TestDecoderFail(t *testing.T) {
	d := NewDecoder([]byte{7})
	if v := d.U8(); v != 1 {
		d.Fail("version %d", v)
	}
	if d.Err() == nil || d.Err().Error() != "version 7" {
		t.Fatalf("%v", d.Err())
	}
	if d.U8() != 0 {
		t.Fatal("read after Fail")
	}
}

func TestDecoderTake(t *testing.T) {
	in := []byte{1, 2, 3, 4}
	d := NewDecoder(in)
	v := d.Take(2)
	if string(v) != "\x01\x02" || cap(v) != 2 {
		t.Fatalf("%v cap %d", v, cap(v))
	}
	_ = append(v, 9) // the capacity ends at the field, so the input is untouched
	if in[2] != 3 {
		t.Fatal("appending to a taken field overwrote the input")
	}
	if d.Take(-1) != nil || !errors.Is(d.Err(), errTruncated) {
		t.Fatal("a negative length did not fail")
	}
}

func TestDecoderBool(t *testing.T) {
	for b, want := range map[byte]error{0: nil, 1: nil, 2: errBool, 0xff: errBool} {
		d := NewDecoder([]byte{b})
		got := d.Bool()
		if err := d.Finish(); !errors.Is(err, want) || (err == nil && got != (b == 1)) {
			t.Errorf("byte %d: %v, %v", b, got, err)
		}
	}
}

func TestDecoderLengthLimit(t *testing.T) {
	// The bound is checked before the bytes: a hostile length fails as
	// too long even when the bytes it claims are missing.
	for name, read := range map[string]func(*Decoder){
		"Bytes8":  func(d *Decoder) { d.Bytes8(3) },
		"Str8":    func(d *Decoder) { d.Str8(3) },
		"Bytes16": func(d *Decoder) { d.Bytes16(3) },
		"Str16":   func(d *Decoder) { d.Str16(3) },
	} {
		short := NewDecoder([]byte{0, 4})
		if name == "Bytes8" || name == "Str8" {
			short = NewDecoder([]byte{4})
		}
		read(&short)
		if err := short.Err(); !errors.Is(err, errTooLong) || !strings.Contains(err.Error(), "4 bytes, limit 3") {
			t.Errorf("%s over its limit: %v", name, err)
		}
	}
	d := NewDecoder([]byte{3, 'a', 'b', 'c'})
	if s := d.Str8(3); s != "abc" || d.Finish() != nil {
		t.Fatalf("a field at its limit: %q %v", s, d.Err())
	}
}

func TestDecoderStringsAreUTF8(t *testing.T) {
	bad := []byte{2, 0xc3, 0x28}
	d := NewDecoder(bad)
	if v := d.Bytes8(10); len(v) != 2 || d.Finish() != nil {
		t.Fatal("Bytes8 refused bytes that are not UTF-8")
	}
	d = NewDecoder(bad)
	d.Str8(10)
	if err := d.Finish(); !errors.Is(err, errNotUTF8) {
		t.Fatalf("Str8: %v", err)
	}
	d = NewDecoder(append([]byte{0}, bad...))
	d.Str16(10)
	if err := d.Finish(); !errors.Is(err, errNotUTF8) {
		t.Fatalf("Str16: %v", err)
	}
}

func TestDecoderFinish(t *testing.T) {
	d := NewDecoder([]byte{1, 2, 3})
	d.U8()
	if d.Err() != nil {
		t.Fatal(d.Err())
	}
	if err := d.Finish(); !errors.Is(err, errTrailing) || err.Error() != "2 trailing bytes" {
		t.Fatalf("%v", err)
	}
	empty := NewDecoder(nil)
	if empty.Finish() != nil || empty.Len() != 0 {
		t.Fatal("an empty record")
	}
}

// FuzzDecode: whatever the bytes, decoding never panics, fails only with
// the package's failures, and a record that decodes re-encodes to exactly
// its input — the one-encoding-per-value property every format relies on.
// `go test -fuzz FuzzDecode ./internal/wire/` explores.
func FuzzDecode(f *testing.F) {
	enc := sample().encode()
	f.Add(enc)
	f.Add(enc[:len(enc)-1])
	f.Add(append(bytes.Clone(enc), 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			for _, known := range []error{errTruncated, errTooLong, errNotUTF8, errBool, errTrailing} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("unknown failure %v", err)
		}
		if again := r.encode(); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	r := sample()
	b.ReportAllocs()
	for b.Loop() {
		r.encode()
	}
}

func BenchmarkDecode(b *testing.B) {
	enc := sample().encode()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRecord(enc); err != nil {
			b.Fatal(err)
		}
	}
}
