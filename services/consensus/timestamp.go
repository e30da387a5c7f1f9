package consensus

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Timestamp is the seed's Timestamp message (§8.2): a point in the
// cluster's total order.
//
// Logical uses TiDB PD's layout: the physical time in milliseconds in the
// high 46 bits, a counter in the low 18 (262,144 timestamps per
// millisecond). It is strictly increasing across every timestamp the
// cluster issues, leader changes included, so Logical alone orders them.
// Physical is the same millisecond in Unix nanoseconds, for people and
// for TTLs; it is not unique.
type Timestamp struct {
	// Logical is the position in the total order.
	Logical uint64
	// Physical is Unix nanoseconds, at millisecond precision.
	Physical int64
	// NodeID is the node that issued the timestamp.
	NodeID string
}

// logicalBits is the width of the counter in Logical.
const logicalBits = 18

// makeTimestamp builds the Timestamp of a Logical value.
func makeTimestamp(logical uint64, node string) Timestamp {
	return Timestamp{Logical: logical, Physical: int64(logical>>logicalBits) * int64(time.Millisecond), NodeID: node}
}

// Time returns Physical as a time.Time.
func (t Timestamp) Time() time.Time { return time.Unix(0, t.Physical) }

// Compare orders timestamps by Logical: -1 if t is before u, +1 if after,
// 0 if equal.
func (t Timestamp) Compare(u Timestamp) int {
	switch {
	case t.Logical < u.Logical:
		return -1
	case t.Logical > u.Logical:
		return 1
	}
	return 0
}

// String formats the timestamp as "<RFC 3339 ms>+<counter>@<node>".
func (t Timestamp) String() string {
	return fmt.Sprintf("%s+%d@%s", t.Time().UTC().Format("2006-01-02T15:04:05.000Z"),
		t.Logical&(1<<logicalBits-1), t.NodeID)
}

// unixMillis is the wall clock in milliseconds, never below 1 so that a
// Logical value is never zero.
func unixMillis(now time.Time) uint64 {
	ms := now.UnixMilli()
	if ms < 1 {
		return 1
	}
	return uint64(ms)
}

// HLC is a local hybrid logical clock: what a node or client uses when
// consensus is unavailable (seed §8.4). Its timestamps have the same layout
// as the cluster's and are strictly increasing locally, even if the wall
// clock steps back; Observe folds in timestamps seen from the cluster, so a
// local timestamp taken after one is never below it. Local timestamps are
// not ordered with other nodes' and must be flagged as such (Consensus
// false). The zero value is not usable; call NewHLC. It is safe for
// concurrent use.
type HLC struct {
	last   atomic.Uint64
	nodeID string
	now    func() time.Time
}

// NewHLC returns a clock that stamps its timestamps with nodeID.
func NewHLC(nodeID string) *HLC { return newHLC(nodeID, time.Now) }

func newHLC(nodeID string, now func() time.Time) *HLC {
	return &HLC{nodeID: nodeID, now: now}
}

// Now returns a timestamp above every one Now returned or Observe saw:
// the wall clock's millisecond if it has moved past them, else the last
// one plus one.
func (c *HLC) Now() Timestamp { return makeTimestamp(c.next(1), c.nodeID) }

// next reserves n consecutive Logical values and returns the first.
func (c *HLC) next(n uint64) uint64 {
	wall := unixMillis(c.now()) << logicalBits
	for {
		last := c.last.Load()
		first := max(last+1, wall)
		if c.last.CompareAndSwap(last, first+n-1) {
			return first
		}
	}
}

// Observe records a timestamp seen elsewhere, so later ones from Now are
// above it.
func (c *HLC) Observe(t Timestamp) {
	for {
		last := c.last.Load()
		if t.Logical <= last || c.last.CompareAndSwap(last, t.Logical) {
			return
		}
	}
}
