package consensus

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/creto-systems/creto/internal/kv"
)

// The timestamp oracle, after TiDB PD: the leader persists a high-water
// mark of physical time through raft, a window ahead of the wall clock,
// and serves timestamps from memory under it with one atomic add.
// A new leader starts at or above the highest mark ever committed, so
// timestamps never go back across leader changes, even if a clock does.
//
// A leader serves only while it holds a lease: it re-verifies its
// leadership with a quorum (raft's VerifyLeader) every HeartbeatTimeout/10
// and may serve for HeartbeatTimeout/2 after the start of the last
// successful verification. A follower that heard from this leader will not
// vote for anyone else until HeartbeatTimeout after that, so a deposed
// leader stops serving before its successor can start. This assumes the
// nodes' clocks run at about the same rate (not that they agree) — the
// usual assumption of leader leases. The only voter of a configuration
// needs no lease: nobody can be elected without its vote.

// tsoType is the internal command that raises the high-water mark.
const tsoType = reservedPrefix + "tso"

var keyHighWater = []byte("hwm")

// tsoHandler keeps the highest high-water mark ever proposed (in
// milliseconds); its payload and result are 8 big-endian bytes.
type tsoHandler struct{}

func (tsoHandler) Validate(payload []byte) error {
	if len(payload) != 8 {
		return invalid(nil, "high-water mark of %d bytes", len(payload))
	}
	return nil
}

func (h tsoHandler) Apply(tx *Tx, payload []byte) ([]byte, error) {
	if err := h.Validate(payload); err != nil {
		return nil, err
	}
	mark := binary.BigEndian.Uint64(payload)
	old, err := readUint64(tx, keyHighWater)
	if err != nil {
		return nil, err
	}
	mark = max(mark, old)
	v := be64(mark)
	return v, tx.Set(keyHighWater, v)
}

// readUint64 reads an 8-byte counter, 0 when absent.
func readUint64(tx *Tx, key []byte) (uint64, error) {
	v, err := tx.Get(key)
	switch {
	case errors.Is(err, ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, err
	case len(v) != 8:
		return 0, fmt.Errorf("%w: counter %q of %d bytes", ErrCorrupt, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// tso is the leader's in-memory oracle.
type tso struct {
	// last is the last Logical value issued by this node.
	last atomic.Uint64
	// limit is the committed high-water mark in milliseconds: every
	// timestamp served has a physical part below it. 0: not serving.
	limit atomic.Uint64
	// lease is the monotonic deadline (since epoch) until which this node
	// may act as leader; 0: no lease.
	lease atomic.Int64
	// sole is set while this node is the configuration's only voter: no
	// other node can be elected without its vote, which a leader never
	// gives, so its leadership needs no lease (and a one-node cluster
	// keeps serving however busy its process is).
	sole  atomic.Bool
	epoch time.Time
	// kick asks the leader's session to raise the mark now.
	kick chan struct{}
}

func newTSO() *tso { return &tso{epoch: time.Now(), kick: make(chan struct{}, 1)} }

// errWindowExhausted: every timestamp below the committed mark is taken
// (hundreds of millions of them a second will do it). Callers wait for the
// mark to be raised, as TiDB's clients wait for PD's next update.
var errWindowExhausted = fmt.Errorf("%w: the timestamp window is exhausted until the high-water mark is raised", ErrUnavailable)

// requestRaise kicks the session to raise the mark without waiting for
// its next tick.
func (t *tso) requestRaise() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// mono is monotonic time since the oracle started.
func (t *tso) mono() int64 { return int64(time.Since(t.epoch)) }

func (t *tso) leaseValid() bool { return t.sole.Load() || t.mono() < t.lease.Load() }

// extendLease moves the lease deadline forward (never back).
func (t *tso) extendLease(until int64) {
	for {
		old := t.lease.Load()
		if until <= old || t.lease.CompareAndSwap(old, until) {
			return
		}
	}
}

// stop ends serving at once: the lease and the window are gone.
func (t *tso) stop() {
	t.sole.Store(false)
	t.lease.Store(0)
	t.limit.Store(0)
}

// start begins serving from physical time from (ms) under mark.
func (t *tso) start(from, mark uint64) {
	t.raise(from << logicalBits)
	t.limit.Store(mark)
}

// raise moves last up to v if it is below.
func (t *tso) raise(v uint64) {
	for {
		old := t.last.Load()
		if v <= old || t.last.CompareAndSwap(old, v) {
			return
		}
	}
}

// allocate reserves n consecutive Logical values and returns the first.
func (t *tso) allocate(n uint32) (uint64, error) {
	if !t.leaseValid() {
		return 0, noQuorum("leadership is not confirmed by a quorum")
	}
	limit := t.limit.Load()
	if limit == 0 {
		return 0, unavailable("the new leader is still loading the timestamp high-water mark")
	}
	v := t.last.Add(uint64(n))
	if v>>logicalBits >= limit {
		return 0, errWindowExhausted
	}
	return v - uint64(n) + 1, nil
}

// lead runs the oracle for one term of leadership, until ctx ends.
func (n *Node) lead(ctx context.Context) {
	defer n.tso.stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.renewLease(ctx)
	}()
	defer func() { <-done }()

	window := uint64(n.cfg.TSOWindow / time.Millisecond)
	// A leader that cannot start serving yet (a slow barrier, a failed
	// write) keeps trying for as long as it leads.
	for {
		err := n.startServing(ctx, window)
		if err == nil {
			break
		}
		n.log.Warn("consensus: the new leader cannot serve timestamps yet", "error", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(n.cfg.TSOUpdateInterval):
		}
	}

	var published string // this node's client address, as last recorded
	n.publishClientAddress(ctx, &published)
	tick := time.NewTicker(n.cfg.TSOUpdateInterval)
	defer tick.Stop()
	for {
		urgent := false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.tso.kick:
			urgent = true
		}
		if err := n.advanceTSO(ctx, window, urgent); err != nil {
			n.log.Warn("consensus: raising the timestamp high-water mark", "error", err)
		}
		n.publishClientAddress(ctx, &published)
	}
}

// startServing loads the highest mark ever committed and starts serving
// above it.
func (n *Node) startServing(ctx context.Context, window uint64) error {
	// Every entry of earlier terms must be applied before the mark is
	// read, or a mark committed by the previous leader could be missed.
	if err := wait(ctx, n.raft.Barrier(n.cfg.ElectionTimeout)); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	mark, err := n.readHighWater(ctx)
	if err != nil {
		return err
	}
	from := max(unixMillis(n.now()), mark, n.tso.last.Load()>>logicalBits+1)
	if mark, err = n.persistHighWater(ctx, from+window); err != nil {
		return err
	}
	n.tso.start(from, mark)
	n.log.Info("consensus: serving timestamps", "from_ms", from, "high_water_ms", mark)
	return nil
}

// advanceTSO moves the physical part up to the wall clock and, when less
// than half the window is left ahead of the wall clock (urgent: when the
// callers used it all), persists a mark a window ahead of the wall clock
// first. The mark follows the wall clock, not the timestamps served, so
// Physical never runs more than a window ahead of real time: a burst past
// 262,144 timestamps a millisecond borrows from the window, then waits.
func (n *Node) advanceTSO(ctx context.Context, window uint64, urgent bool) error {
	now := unixMillis(n.now())
	limit := n.tso.limit.Load()
	if limit == 0 {
		return nil
	}
	ahead := window / 2
	if urgent {
		ahead = window
	}
	if now+ahead > limit {
		mark, err := n.persistHighWater(ctx, now+window)
		if err != nil {
			return err
		}
		n.tso.limit.Store(mark)
		limit = mark
	}
	// Never move the physical part onto the mark itself: what is served
	// must stay below what is committed.
	n.tso.raise(min(now, limit-1) << logicalBits)
	return nil
}

func (n *Node) readHighWater(ctx context.Context) (uint64, error) {
	v, err := n.store.Get(ctx, []byte(handlerPrefix(tsoType)+string(keyHighWater)))
	if err != nil {
		if errors.Is(err, kv.ErrNotFound) {
			return 0, nil
		}
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: high-water mark of %d bytes", ErrCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// persistHighWater commits a mark through raft and returns the highest
// mark committed, which may be above the one asked for.
func (n *Node) persistHighWater(ctx context.Context, mark uint64) (uint64, error) {
	env := envelope{typ: tsoType, caller: n.id, payload: be64(mark)}
	res, err := n.apply(ctx, env.encode())
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(res.data), nil
}

// renewLease keeps the leadership lease fresh until ctx ends. A
// verification starts every tick even while earlier ones are still out (up
// to four), so one slow round trip does not let the lease lapse while
// others would have succeeded.
func (n *Node) renewLease(ctx context.Context) {
	lease := int64(n.cfg.HeartbeatTimeout / 2)
	tick := time.NewTicker(max(n.cfg.HeartbeatTimeout/10, time.Millisecond))
	defer tick.Stop()
	inflight := make(chan struct{}, 4)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer n.tso.sole.Store(false)
	for {
		n.tso.sole.Store(n.soleVoter())
		select {
		case inflight <- struct{}{}:
			start := n.tso.mono()
			wg.Go(func() {
				defer func() { <-inflight }()
				// raft leaves a verification pending forever if it shuts
				// down meanwhile, so wait on ctx too.
				if err := wait(ctx, n.raft.VerifyLeader()); err == nil {
					n.tso.extendLease(start + lease)
				}
			})
		default: // four verifications are out already
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// GetTimestampRequest asks for Count consecutive timestamps.
type GetTimestampRequest struct {
	// Count is how many timestamps (0 means 1, at most
	// Config.MaxTimestampBatch): one call reserves a contiguous range of
	// Logical values, as TiDB's clients batch requests.
	Count uint32
	// AllowLocal asks for local timestamps from this node's HLC when
	// consensus is unavailable (ErrUnavailable, ErrNoQuorum) instead of an
	// error (seed §8.4). They come back with Consensus false and a
	// Warning. ErrNotLeader is still returned: the leader is reachable,
	// ask it.
	AllowLocal bool
}

// TimestampResult holds Count timestamps: Timestamp, then the same with
// Logical + 1 … Logical + Count - 1 (see At).
type TimestampResult struct {
	Timestamp
	Count uint32
	// Consensus is true for timestamps from the cluster's oracle, ordered
	// with every other; false for local fallback timestamps, ordered only
	// with this node's.
	Consensus bool
	// Warning says why local timestamps were returned.
	Warning string
}

// At returns the i-th timestamp of the range (i < Count).
func (r TimestampResult) At(i uint32) Timestamp {
	return makeTimestamp(r.Logical+uint64(i), r.NodeID)
}

// GetTimestamp returns timestamps from the cluster's oracle, strictly
// increasing across all callers and leader changes. Only the leader
// serves them, from memory (no raft round trip per call).
func (n *Node) GetTimestamp(ctx context.Context, caller string, req GetTimestampRequest) (TimestampResult, error) {
	count, err := n.timestampCount(ctx, caller, req)
	if err != nil {
		return TimestampResult{}, err
	}
	first, err := n.reserve(ctx, count, nil)
	if err == nil {
		return TimestampResult{Timestamp: makeTimestamp(first, n.id), Count: count, Consensus: true}, nil
	}
	if !req.AllowLocal || !errors.Is(err, ErrUnavailable) {
		return TimestampResult{}, err
	}
	return n.local(count, err), nil
}

// LocalTimestamp returns Count timestamps from this node's local clock,
// flagged Consensus false with a Warning naming cause: for a caller that
// could not get consensus timestamps even from the leader (seed §8.4:
// "retry once, then local timestamp") — on a follower, GetTimestamp with
// AllowLocal answers ErrNotLeader rather than fall back. They are above
// every timestamp this node issued, applied or Observed.
func (n *Node) LocalTimestamp(ctx context.Context, caller string, req GetTimestampRequest, cause error) (TimestampResult, error) {
	count, err := n.timestampCount(ctx, caller, req)
	if err != nil {
		return TimestampResult{}, err
	}
	return n.local(count, cause), nil
}

// timestampCount authorizes a timestamp request and returns its count.
func (n *Node) timestampCount(ctx context.Context, caller string, req GetTimestampRequest) (uint32, error) {
	if err := n.authorize(ctx, caller, OpTimestamp, ""); err != nil {
		return 0, err
	}
	count := max(req.Count, 1)
	if count > n.cfg.MaxTimestampBatch {
		return 0, invalid(ErrTooLarge, "%d timestamps in one call (limit %d)", count, n.cfg.MaxTimestampBatch)
	}
	return count, nil
}

// Observe records a consensus timestamp this node's caller got from the
// leader, so that later local timestamps of this node are above it.
func (n *Node) Observe(t Timestamp) { n.hlc.Observe(t) }

// local takes count timestamps from the node's hybrid logical clock.
func (n *Node) local(count uint32, cause error) TimestampResult {
	// Local timestamps stay above what this node served as leader.
	n.hlc.Observe(makeTimestamp(n.tso.last.Load(), n.id))
	return TimestampResult{
		Timestamp: makeTimestamp(n.hlc.next(uint64(count)), n.id),
		Count:     count,
		Warning:   fmt.Sprintf("consensus unavailable, local timestamp ordered on this node only: %v", cause),
	}
}

// reserve reserves count consecutive timestamps on the leader. While the
// window is exhausted it asks for the mark to be raised and waits, up to
// ctx. With locked, it calls locked(first) under the ordering lock, so
// whatever locked queues is in timestamp order.
func (n *Node) reserve(ctx context.Context, count uint32, locked func(first uint64)) (uint64, error) {
	for {
		if err := n.usable(); err != nil {
			return 0, err
		}
		if n.raft.State() != raft.Leader {
			return 0, n.notLeader()
		}
		if locked != nil {
			n.orderMu.Lock()
		}
		first, err := n.tso.allocate(count)
		if err == nil && locked != nil {
			locked(first)
		}
		if locked != nil {
			n.orderMu.Unlock()
		}
		if !errors.Is(err, errWindowExhausted) {
			return first, err
		}
		n.tso.requestRaise()
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: %w", err, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// soleVoter reports whether this node is the only voter of the latest
// configuration.
func (n *Node) soleVoter() bool {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	voters := 0
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
			if string(s.ID) != n.id {
				return false
			}
		}
	}
	return voters == 1
}
