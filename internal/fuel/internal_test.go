package fuel

import (
	"bytes"
	"math"
	"testing"
)

// TestEncoder pins the instruction sequences, as disassembled below.
func TestEncoder(t *testing.T) {
	e := encoder{global: 3, local: 200, scratch: 201} // 200 takes two bytes
	// local.tee 200; i64.const 0; i64.lt_s; if; i64.const -1; global.set 3; unreachable; end
	check := []byte{0x22, 0xC8, 0x01, 0x42, 0, 0x53, 0x04, 0x40, 0x42, 0x7F, 0x24, 3, 0x00, 0x0B}
	for _, c := range []struct {
		ins  insertion
		want []byte
	}{
		// global.get 3; i64.const 70; i64.sub; <check>
		{insertion{kind: insEntry, cost: 70}, append([]byte{0x23, 3, 0x42, 0xC6, 0x00, 0x7D}, check...)},
		// local.get 200; i64.const 5; i64.sub; <check>
		{insertion{kind: insLoop, cost: 5}, append([]byte{0x20, 0xC8, 0x01, 0x42, 5, 0x7D}, check...)},
		// local.tee 201; local.get 200; local.get 201; i64.extend_i32_u;
		// i64.const 4; i64.shr_u; i64.sub; <check>
		{insertion{kind: insBulk}, append([]byte{0x22, 0xC9, 0x01, 0x20, 0xC8, 0x01, 0x20, 0xC9, 0x01, 0xAD, 0x42, bulkShift, 0x88, 0x7D}, check...)},
		// local.get 200; global.set 3
		{insertion{kind: insStore}, []byte{0x20, 0xC8, 0x01, 0x24, 3}},
		// global.get 3; local.set 200
		{insertion{kind: insReload}, []byte{0x23, 3, 0x21, 0xC8, 0x01}},
	} {
		if got := e.append(nil, c.ins); !bytes.Equal(got, c.want) {
			t.Errorf("kind %d:\n got % x\nwant % x", c.ins.kind, got, c.want)
		}
	}
}

// TestLEB128 round-trips values through the encoders and the reader.
func TestLEB128(t *testing.T) {
	signed := []int64{0, 1, -1, 63, 64, -64, -65, 8191, -8192, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64}
	for _, v := range signed {
		b := appendSleb(nil, v)
		if len(b) != slebLen(v) {
			t.Errorf("slebLen(%d) = %d, encoded in %d", v, slebLen(v), len(b))
		}
		r := reader{buf: b, limit: len(b), fn: -1}
		if got, err := r.signed(64); err != nil || got != v || r.pos != len(b) {
			t.Errorf("s64 %d: got %d, %v after %d bytes", v, got, err, r.pos)
		}
	}
	for _, v := range []uint64{0, 1, 127, 128, 16383, 16384, math.MaxUint32} {
		b := appendUleb(nil, v)
		if len(b) != ulebLen(v) {
			t.Errorf("ulebLen(%d) = %d, encoded in %d", v, ulebLen(v), len(b))
		}
		r := reader{buf: b, limit: len(b), fn: -1}
		if got, err := r.u32(); err != nil || uint64(got) != v {
			t.Errorf("u32 %d: got %d, %v", v, got, err)
		}
	}
	// Padded encodings are valid as long as the spare bits are a sign
	// extension; anything else overflows.
	for _, c := range []struct {
		bits int
		enc  []byte
		want int64
		ok   bool
	}{
		{32, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0x7F}, -1, true},
		{32, []byte{0x80, 0x80, 0x80, 0x80, 0x00}, 0, true},
		{32, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0x0F}, 0, false},
		{32, []byte{0x80, 0x80, 0x80, 0x80, 0x70}, 0, false},
		{33, []byte{0xC0, 0xBB, 0x78}, -123456, true},
		{33, []byte{0x80, 0x80, 0x80, 0x80, 0x10}, 1 << 32, false},
		{33, []byte{0x80, 0x80, 0x80, 0x80, 0x0F}, 0xF << 28, true},
		{64, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7F}, math.MinInt64, true},
		{64, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 0, false},
	} {
		r := reader{buf: c.enc, limit: len(c.enc), fn: -1}
		got, err := r.signed(c.bits)
		if (err == nil) != c.ok || (c.ok && got != c.want) {
			t.Errorf("s%d % x: got %d, %v; want %d, ok=%v", c.bits, c.enc, got, err, c.want, c.ok)
		}
	}
}

// TestOpcodeTables checks the tables against facts of the binary format.
func TestOpcodeTables(t *testing.T) {
	decodable := 0
	for op, info := range ops {
		switch info.ctrl {
		case cUnsupported:
			if info.feature == "" {
				t.Errorf("opcode %#x rejected without naming its feature", op)
			}
		case cInvalid:
		default:
			decodable++
		}
	}
	// 2.0 without SIMD: 0x00-0x05, 0x0B-0x11, 0x1A-0x1C, 0x20-0x26, 0x28-0xC4,
	// 0xD0-0xD2 and the 0xFC prefix, plus return_call and
	// return_call_indirect.
	if want := 6 + 7 + 3 + 7 + (0xC4 - 0x28 + 1) + 3 + 1 + 2; decodable != want {
		t.Errorf("%d decodable opcodes, want %d", decodable, want)
	}
	for sub, info := range fcOps {
		if info.bulk != (sub == 8 || sub == 10 || sub == 11 || sub == 12 || sub == 14 || sub == 17) {
			t.Errorf("0xFC %d: bulk = %v", sub, info.bulk)
		}
	}
}
