package engine

import (
	"testing"

	cedar "github.com/cedar-policy/cedar-go"
)

var decodeSeeds = []string{
	`{}`, ` { } `, `{"a":1}`, `{"risk": 3, "channel": "api", "ok": true, "no": false}`,
	`{"a":-0}`, `{"a":01}`, `{"a":-01}`, `{"a":1.5}`, `{"a":1e3}`, `{"a":9223372036854775808}`,
	`{"a":-9223372036854775808}`, `{"a":"x\"y"}`, `{"a":"\u00e9"}`, `{"a":null}`, `{"a":[1,2]}`,
	`{"a":{"b":1}}`, `{"a":1,"a":2}`, `{"__entity":{"type":"A","id":"b"}}`, `[1]`, `"x"`, `{"a":1}x`,
	`{"a":1,}`, `{"a" 1}`, "{\"a\":\"\xff\"}", `{"é":"ü"}`, `{"a":tru}`, `{"a":"`,
}

// FuzzDecodeObject: whatever the fast path accepts, cedar-go's decoder
// accepts too, with an equal record.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := decodeFlat(b)
		var want cedar.Record
		err := want.UnmarshalJSON(b)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("fast path accepted %q, cedar-go rejects it: %v", b, err)
		}
		if got := cedar.NewRecord(m); !got.Equal(want) {
			t.Fatalf("fast path decoded %q as %v, cedar-go as %v", b, got, want)
		}
	})
}

func TestDecodeObjectMatchesCedar(t *testing.T) {
	fast := 0
	for _, s := range decodeSeeds {
		got, gotErr := decodeObject([]byte(s))
		var want cedar.Record
		wantErr := want.UnmarshalJSON([]byte(s))
		if (gotErr == nil) != (wantErr == nil) || (gotErr == nil && !got.Equal(want)) {
			t.Errorf("%q: got %v (%v), cedar-go %v (%v)", s, got, gotErr, want, wantErr)
		}
		if _, ok := decodeFlat([]byte(s)); ok {
			fast++
		}
	}
	if fast < 4 {
		t.Fatalf("the fast path took only %d of the seeds", fast)
	}
}
