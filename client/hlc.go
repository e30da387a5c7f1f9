package client

import (
	"sync/atomic"
	"time"
)

// logicalBits is the width of the counter in a timestamp's Logical; the
// bits above it are Unix milliseconds. It is the cluster's layout (TiDB
// PD's), so local and consensus timestamps compare on one scale.
const logicalBits = 18

// hlc is a hybrid logical clock in that layout: each timestamp is above
// the last one it gave and every one it observed, and follows the wall
// clock's milliseconds while they move forward. A wall clock that steps
// back does not take it back.
type hlc struct {
	last atomic.Uint64
	now  func() time.Time
}

// processClock is the one local clock of the process, so that the local
// timestamps of every ConsensusClient in it are in one order.
var processClock = &hlc{now: time.Now}

// next reserves n consecutive timestamps and returns the first.
func (h *hlc) next(n uint32) uint64 {
	for {
		last := h.last.Load()
		first := max(last+1, uint64(h.now().UnixMilli())<<logicalBits)
		if h.last.CompareAndSwap(last, first+uint64(n)-1) {
			return first
		}
	}
}

// observe records a timestamp seen elsewhere (a consensus one), so that
// later local timestamps are above it.
func (h *hlc) observe(logical uint64) {
	for {
		last := h.last.Load()
		if logical <= last || h.last.CompareAndSwap(last, logical) {
			return
		}
	}
}

// timestampAt is the timestamp of a Logical value: its Physical is the
// millisecond it carries.
func timestampAt(logical uint64, node string) Timestamp {
	return Timestamp{Logical: logical, Physical: int64(logical>>logicalBits) * int64(time.Millisecond), NodeID: node}
}
