package memory

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// FuzzDecodeRecord: stored bytes either decode to a record that
// re-encodes to exactly the same bytes, or fail with ErrCorrupt — never a
// panic, never a record Store would have refused.
func FuzzDecodeRecord(f *testing.F) {
	seed := &record{
		mem: Memory{ID: "0123456789abcdef0123456789abcdef", Agent: "agent-a", Content: "hello", Type: Reasoning,
			Metadata: map[string]string{"action_id": "x", "b": ""}, CreatedAt: time.Unix(5, 0), ExpiresAt: time.Unix(9, 0)},
		vec: []float32{0.6, 0.8},
	}
	f.Add(encodeRecord(seed))
	seed.mem.Metadata, seed.mem.ExpiresAt = nil, time.Time{}
	f.Add(encodeRecord(seed))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			return
		}
		if again := encodeRecord(r); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}

func TestRecordRoundTrip(t *testing.T) {
	r := &record{
		mem: Memory{ID: "0123456789abcdef0123456789abcdef", Agent: "a", Content: "héllo", Type: ToolResult,
			Metadata: map[string]string{"z": "1", "a": "2"}, CreatedAt: time.Unix(5, 7).UTC(), ExpiresAt: time.Unix(9, 0).UTC()},
		vec: []float32{1, 0, -0.5},
	}
	got, err := decodeRecord(encodeRecord(r))
	if err != nil {
		t.Fatal(err)
	}
	if got.mem.Content != r.mem.Content || got.mem.Metadata["a"] != "2" || !got.mem.CreatedAt.Equal(r.mem.CreatedAt) ||
		!got.mem.ExpiresAt.Equal(r.mem.ExpiresAt) || len(got.vec) != 3 || got.vec[2] != -0.5 {
		t.Fatalf("round trip: %+v", got)
	}
	b := encodeRecord(r)
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(append([]byte(nil), b...), 0), append([]byte{2}, b[1:]...)} {
		if _, err := decodeRecord(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("decoding %x: %v", bad, err)
		}
	}
}
