package consensus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/creto-systems/creto/internal/kv"
)

// orderOneByOne orders k single-event batches with ids prefix-0 … and
// payloads of size bytes.
func orderOneByOne(t testing.TB, n *Node, prefix string, k, size int) {
	t.Helper()
	payload := bytes.Repeat([]byte{'p'}, size)
	for i := range k {
		if _, err := n.OrderEvents(context.Background(), "agent", OrderEventsRequest{
			Events: []Event{{ID: fmt.Sprintf("%s-%d", prefix, i), Payload: payload}},
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads every event a node keeps.
func readAll(t testing.TB, n *Node) []OrderedEvent {
	t.Helper()
	var out []OrderedEvent
	from := uint64(0)
	for {
		r, err := n.ReadEvents(context.Background(), "agent", ReadEventsRequest{From: from, Limit: maxReadLimit})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r.Events...)
		if len(r.Events) == 0 || r.Next > r.Last {
			return out
		}
		from = r.Next
	}
}

// tailSegment returns the newest raft-wal segment file of a node and the
// end of the data written to it (the file is preallocated with zeros).
func tailSegment(t testing.TB, tn *testNode) (string, []byte, int) {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(tn.dir, "consensus", "wal", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segments: %v", err)
	}
	slices.Sort(segs)
	path := segs[len(segs)-1]
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	end := len(bytes.TrimRight(data, "\x00"))
	return path, data, end
}

// A torn write — bytes after the last fsync'd batch, never acknowledged —
// is discarded by raft-wal's recovery; every acknowledged event survives.
func TestTornLogTailIsDiscarded(t *testing.T) {
	tn := newTestNode(t, "solo", nil)
	waitServing(t, tn)
	orderOneByOne(t, tn.n, "e", 20, 8)
	tn.kill()

	path, data, end := tailSegment(t, tn)
	for i := end + 8; i < end+8+200 && i < len(data); i++ {
		data[i] = byte(i*31 + 7)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	tn.start()
	waitServing(t, tn)
	got := readAll(t, tn.n)
	if len(got) != 20 || got[19].ID != "e-19" {
		t.Fatalf("after a torn tail: %d events", len(got))
	}
	orderOneByOne(t, tn.n, "f", 1, 8)
	if got := readAll(t, tn.n); len(got) != 21 || got[20].Sequence != 21 {
		t.Fatalf("writing after recovery: %+v", got[len(got)-1])
	}
}

// A log that lost entries the state machine had applied (damage beyond a
// torn tail) makes Open fail loudly with the positions, instead of
// silently skipping new entries as already applied.
func TestLogMissingAppliedEntriesFailsOpen(t *testing.T) {
	tn := newTestNode(t, "solo", nil)
	waitServing(t, tn)
	orderOneByOne(t, tn.n, "e", 40, 8)
	tn.kill()

	path, data, end := tailSegment(t, tn)
	clear(data[end/2 : end])
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := kv.Open(filepath.Join(tn.dir, "kv"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = open(context.Background(), tn.dir, s, tn.cfg, tn.now)
	var ce *CorruptLogError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open over a damaged log: %v", err)
	}
	if ce.AppliedIndex <= ce.LastLogIndex || ce.AppliedIndex <= ce.SnapshotIndex {
		t.Fatalf("positions %+v", ce)
	}
	t.Log(err)
}

// A node whose store was lost (or rebuilt) while its raft directory
// survived restores the newest snapshot at start, then replays the log
// after it: nothing is lost and nothing is applied twice.
func TestStoreRebuiltFromSnapshot(t *testing.T) {
	ctx := context.Background()
	h := &counter{}
	tn := newTestNode(t, "solo", func(c *Config) {
		c.Handlers = map[string]Handler{counterType: h}
		c.TrailingLogs = 5
	})
	waitServing(t, tn)
	orderOneByOne(t, tn.n, "e", 30, 8)
	for range 3 {
		if _, err := tn.n.Propose(ctx, "agent", Command{Type: counterType, Payload: []byte("c")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tn.n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	orderOneByOne(t, tn.n, "f", 5, 8)
	if _, err := tn.n.Propose(ctx, "agent", Command{Type: counterType, Payload: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	want := readAll(t, tn.n)
	tn.kill()
	if err := os.RemoveAll(filepath.Join(tn.dir, "kv")); err != nil {
		t.Fatal(err)
	}
	tn.start()
	waitServing(t, tn)
	got := readAll(t, tn.n)
	if len(got) != len(want) || len(got) != 35 {
		t.Fatalf("%d events after the rebuild, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Sequence != want[i].Sequence || got[i].ID != want[i].ID || got[i].Timestamp != want[i].Timestamp {
			t.Fatalf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if v, err := tn.n.Get(ctx, "agent", counterType, []byte("c")); err != nil || decodeCount(t, v) != 4 {
		t.Fatalf("counter after the rebuild: %x %v", v, err)
	}
}
