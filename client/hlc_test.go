package client

import (
	"sync"
	"testing"
	"time"
)

// The local clock follows the wall clock's milliseconds, never goes back
// when the wall clock does, reserves ranges, and stays above what it
// observed.
func TestHLC(t *testing.T) {
	wall := time.UnixMilli(1_800_000_000_000)
	h := &hlc{now: func() time.Time { return wall }}
	ms := uint64(wall.UnixMilli()) << logicalBits
	if got := h.next(1); got != ms {
		t.Fatalf("first: %d, want the wall clock's millisecond %d", got, ms)
	}
	if got := h.next(10); got != ms+1 {
		t.Fatalf("same millisecond: %d", got)
	}
	if got := h.next(1); got != ms+11 {
		t.Fatalf("after a range of 10: %d", got)
	}
	wall = wall.Add(-time.Hour) // the wall clock steps back
	if got := h.next(1); got != ms+12 {
		t.Fatalf("clock stepped back: %d", got)
	}
	wall = wall.Add(2 * time.Hour)
	later := uint64(wall.UnixMilli()) << logicalBits
	if got := h.next(1); got != later {
		t.Fatalf("clock moved on: %d, want %d", got, later)
	}
	h.observe(later + 500) // a consensus timestamp from a clock ahead
	h.observe(later + 100) // an older one changes nothing
	if got := h.next(1); got != later+501 {
		t.Fatalf("after observing: %d", got)
	}
	if ts := timestampAt(later, "n"); ts.Time() != wall.Truncate(time.Millisecond) || ts.NodeID != "n" {
		t.Fatalf("timestamp %+v", ts)
	}
	if r := (TimestampRange{First: timestampAt(later, "n"), Count: 3}); r.At(2).Logical != later+2 {
		t.Fatalf("At: %+v", r.At(2))
	}
}

// Concurrent callers never get the same timestamp, and each sees its own
// increasing.
func TestHLCConcurrent(t *testing.T) {
	h := &hlc{now: time.Now}
	const workers, each = 8, 2000
	got := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				n := uint32(1 + i%3)
				got[w] = append(got[w], h.next(n), uint64(n))
			}
		})
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, g := range got {
		var prev uint64
		for i := 0; i < len(g); i += 2 {
			first, n := g[i], g[i+1]
			if first <= prev {
				t.Fatalf("not increasing: %d after %d", first, prev)
			}
			for k := range n {
				if seen[first+k] {
					t.Fatalf("timestamp %d given twice", first+k)
				}
				seen[first+k] = true
			}
			prev = first + n - 1
		}
	}
}
