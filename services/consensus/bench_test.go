package consensus

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/creto-systems/creto/internal/kv"
)

// BenchmarkSnapshot: writing and restoring the snapshot of a node that
// keeps 100,000 events of 100 bytes (the default retention), which sizes
// trailing_logs (docs/consensus.md, "Sizing snapshots").
func BenchmarkSnapshot(b *testing.B) {
	ctx := context.Background()
	tn := newTestNode(b, "solo", nil)
	waitServing(b, tn)
	payload := make([]byte, 100)
	for i := range 1000 {
		req := OrderEventsRequest{Events: make([]Event, 100)}
		for j := range req.Events {
			req.Events[j] = Event{ID: fmt.Sprintf("event-%d-%d", i, j), Payload: payload}
		}
		if _, err := tn.n.OrderEvents(ctx, "bench", req); err != nil {
			b.Fatal(err)
		}
	}
	var snap memSink
	b.Run("persist", func(b *testing.B) {
		for b.Loop() {
			snap.Reset()
			if err := (fsmSnapshot{store: tn.store}).Persist(&snap); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(snap.Len())/1e6, "MB")
	})
	store, err := kv.Open(filepath.Join(b.TempDir(), "kv"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	f, err := newFSM(ctx, store, nil, DefaultConfig().IdempotencyWindow, tn.cfg.Logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("restore", func(b *testing.B) {
		for b.Loop() {
			if err := f.Restore(readCloser{bytes.NewReader(snap.Bytes())}); err != nil {
				b.Fatal(err)
			}
		}
	})
	if got := readAllFrom(b, store); got != 100_000 {
		b.Fatalf("restored %d events", got)
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "bench" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// readAllFrom counts the events a store holds.
func readAllFrom(b *testing.B, store kv.Store) int {
	n := 0
	err := store.Scan(context.Background(), []byte(handlerPrefix(eventsType)+"b/"), func(_, v []byte) error {
		sb, err := decodeStoredBatch(0, v)
		n += len(sb.events)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
